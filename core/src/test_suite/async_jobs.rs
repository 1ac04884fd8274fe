//! Async commands: an awaited enqueue stores the job a sync one does, and a
//! multi processor runs async jobs on its runtime, apart from its threads,
//! with the retries, ordering keys, heartbeats and stop that sync jobs get.
//!
//! The processors here serve the case's own queue and [`ASYNC_QUEUE`], the
//! queue the async commands are registered on and which stays empty: a
//! processor runs async jobs on its runtime only when a queue it serves has
//! an async command. The jobs go on the case's queue with
//! [`NewJob::queue`], as the other cases' do.

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commands::{ASYNC_QUEUE, Event, events, new_run};
use super::{
    HOUR, LEASE, echo, echo_async, enqueued_async, fail_async, meet_async, panics_async,
    sleep_async, unique_queue,
};
use crate::{
    BaseQueue, JobId, JobState, MultiProcessor, NewJob, ProcessorConfig, RetryPolicy, codec,
};

/// How long a case waits for what a processor does: long, for slow
/// backends; a case that passes never waits that long.
const WAIT: Duration = Duration::from_secs(60);

/// An awaited `f::enqueue(…)` stores the job `f::enqueue_on` stores, with
/// the command's queue, key, priority and attempts; `.at(…)` schedules it.
pub fn awaited_enqueue_stores_the_sync_job(backend: &Arc<dyn BaseQueue>) {
    // the key's value is the case's own, as the queue's name is elsewhere
    let account = unique_queue("awaited");
    let later = unique_queue("awaited-later");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let before = backend.now().expect("now");
    let (awaited, scheduled) = runtime.block_on(async {
        let awaited = enqueued_async::enqueue(account.clone(), 7)
            .on(backend)
            .await
            .expect("awaited enqueue");
        let scheduled = enqueued_async::enqueue(later.clone(), 8)
            .at(HOUR)
            .on(backend)
            .await
            .expect("awaited enqueue, scheduled");
        (awaited.id(), scheduled.id())
    });
    let synced = enqueued_async::enqueue_on(&**backend, account.clone(), 7).expect("enqueue");

    let awaited_job = backend.job(awaited).expect("job").expect("stored");
    let synced_job = backend.job(synced).expect("job").expect("stored");
    let fields = |job: &crate::Job| {
        (
            job.command.clone(),
            job.queue.clone(),
            job.args.clone(),
            job.key.clone(),
            job.priority,
            job.max_attempts,
            job.state,
            job.attempt,
        )
    };
    assert_eq!(fields(&awaited_job), fields(&synced_job));
    assert_eq!(awaited_job.command, enqueued_async::NAME);
    assert_eq!(
        awaited_job.args,
        codec::encode(&(account.clone(), 7u64)).expect("encodes")
    );
    assert_eq!(
        (
            awaited_job.key.as_deref(),
            awaited_job.priority,
            awaited_job.max_attempts
        ),
        (Some(account.as_str()), 7, 5),
        "the command's key, priority and attempts"
    );
    assert_eq!(awaited_job.state, JobState::Pending);

    let job = backend.job(scheduled).expect("job").expect("stored");
    assert_eq!(
        (job.state, job.key.as_deref()),
        (JobState::Pending, Some(later.as_str()))
    );
    assert!(
        job.run_at >= before + HOUR - Duration::from_secs(1),
        "run_at is an hour away"
    );
    // only the scheduled job is left: nothing of this case is claimable
    assert_eq!(
        backend.cancel(awaited, "done with").expect("cancel"),
        crate::Cancellation::Cancelled
    );
    assert_eq!(
        backend.cancel(synced, "done with").expect("cancel"),
        crate::Cancellation::Cancelled
    );
    let claimed = backend.claim(&job.queue, 10, LEASE).expect("claim");
    assert!(
        claimed.iter().all(|c| c.job.id != scheduled),
        "a job scheduled an hour away is not claimable now"
    );
    assert_eq!(
        backend.cancel(scheduled, "done with").expect("cancel"),
        crate::Cancellation::Cancelled
    );
}

/// A multi processor runs async jobs on its runtime to `done`, their
/// results stored; two of them run at once on a processor of one thread.
pub fn async_jobs_run_to_done(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("async-done");
    let run = new_run();
    let echoes: Vec<(JobId, u64)> = (1..=10)
        .map(|value| (enqueue(backend, &q, echo_async::NAME, &(value,)), value))
        .collect();
    let sync = enqueue(backend, &q, echo::NAME, &(99u64,));
    let meets = [
        enqueue(backend, &q, meet_async::NAME, &(run, 1u32, 2u32)),
        enqueue(backend, &q, meet_async::NAME, &(run, 2u32, 1u32)),
    ];
    let processor = start(backend, &q, |config| config);
    wait_for("every job is done", || {
        backend.stats(&q).expect("stats").done == 13
    });
    processor.stop();

    for (id, value) in echoes {
        let job = backend.job(id).expect("job").expect("exists");
        assert_eq!((job.state, job.attempt), (JobState::Done, 1), "job {id}");
        assert_eq!(
            job.result::<u64>().expect("a result").expect("decodes"),
            value
        );
    }
    let job = backend.job(sync).expect("job").expect("exists");
    assert_eq!(
        job.result::<u64>().expect("a result").expect("decodes"),
        99,
        "a sync job runs beside them"
    );
    for id in meets {
        let job = backend.job(id).expect("job").expect("exists");
        assert!(
            job.result::<bool>().expect("a result").expect("decodes"),
            "the two async jobs ran at once on a processor of one thread: {:?}",
            events(run)
        );
    }
}

/// An async command's `Err` is a failed attempt, retried then `dead` with
/// its text; so is a panic inside its future, as `panicked: …`.
pub fn async_failures_retried_then_dead(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("async-fail");
    let job = |command: &str, message: &str| {
        let args = codec::encode(&(message.to_owned(),)).expect("encodes");
        NewJob::new(command, args).queue(&q).max_attempts(2)
    };
    let failing = backend
        .enqueue(job(fail_async::NAME, "no luck, async"))
        .expect("enqueue");
    let panicking = backend
        .enqueue(job(panics_async::NAME, "kaboom, async"))
        .expect("enqueue");
    let processor = start(backend, &q, |config| config);
    wait_for("both jobs are dead", || {
        backend.stats(&q).expect("stats").dead == 2
    });
    processor.stop();

    let job = backend.job(failing).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Dead, 2),
        "retried once"
    );
    assert_eq!(job.last_error.as_deref(), Some("no luck, async"));
    let job = backend.job(panicking).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Dead, 2),
        "retried once"
    );
    assert_eq!(job.last_error.as_deref(), Some("panicked: kaboom, async"));
}

/// Async jobs with one ordering key never overlap and run in enqueue
/// order, whatever their priority; async jobs with different keys run at
/// once.
pub fn async_ordering_keys(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("async-keys");
    let run = new_run();
    // a1 and b1 each wait for the other to start: they meet only if they
    // run at once
    let a1 = backend
        .enqueue(job(&q, meet_async::NAME, &(run, 1u32, 10u32)).key("a"))
        .expect("enqueue");
    let a2 = backend
        .enqueue(
            job(&q, sleep_async::NAME, &(run, 2u32, 20u64))
                .key("a")
                .priority(10),
        )
        .expect("enqueue");
    let b1 = backend
        .enqueue(job(&q, meet_async::NAME, &(run, 10u32, 1u32)).key("b"))
        .expect("enqueue");
    let a3 = backend
        .enqueue(job(&q, sleep_async::NAME, &(run, 3u32, 20u64)).key("a"))
        .expect("enqueue");
    let processor = start(backend, &q, |config| config);
    wait_for("every job is done", || {
        backend.stats(&q).expect("stats").done == 4
    });
    processor.stop();

    let events = events(run);
    for id in [a1, b1] {
        let job = backend.job(id).expect("job").expect("exists");
        assert!(
            job.result::<bool>().expect("a result").expect("decodes"),
            "jobs of keys a and b ran at once: {events:?}"
        );
    }
    for id in [a2, a3] {
        assert_eq!(super::state_of(&**backend, id), JobState::Done);
    }
    let key_a: Vec<Event> = events
        .iter()
        .copied()
        .filter(|event| matches!(event, Event::Start(1..=3) | Event::End(1..=3)))
        .collect();
    assert_eq!(
        key_a,
        [
            Event::Start(1),
            Event::End(1),
            Event::Start(2),
            Event::End(2),
            Event::Start(3),
            Event::End(3)
        ],
        "key a's jobs one at a time, in enqueue order: {events:?}"
    );
}

/// Heartbeats keep the lease of an async job that runs for longer than
/// its lease: it runs once, and no recovery takes it back.
pub fn heartbeats_keep_async_leases(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("async-heartbeat");
    let run = new_run();
    let id = enqueue(backend, &q, sleep_async::NAME, &(run, 1u32, 1000u64));
    // the maintenance takes back expired leases every half lease
    let processor = start(backend, &q, |config| {
        config.lease(Duration::from_millis(300)).maintenance(true)
    });
    wait_for("the job is done", || {
        backend.stats(&q).expect("stats").done == 1
    });
    processor.stop();

    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt, job.last_error.as_deref()),
        (JobState::Done, 1, None),
        "done on its first attempt, its lease never expired"
    );
    assert_eq!(events(run), [Event::Start(1), Event::End(1)], "it ran once");
}

/// A stop whose grace period ends while an async job's future is pending
/// releases the job: its future is dropped, and the job is `pending`
/// again with its attempt not counted.
pub fn stop_releases_pending_async_job(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("async-stop");
    let run = new_run();
    let id = enqueue(backend, &q, sleep_async::NAME, &(run, 1u32, 600_000u64));
    let processor = start(backend, &q, |config| config);
    wait_for("the job starts", || events(run).contains(&Event::Start(1)));
    let report = processor.stop_within(Duration::from_millis(50));
    assert_eq!(report.released, 1, "the pending job is released");
    wait_for("its future is dropped", || {
        events(run).contains(&Event::Dropped(1))
    });
    assert_eq!(events(run), [Event::Start(1), Event::Dropped(1)]);
    // its threads end with the dropped future: the stop joins them, and
    // the processor lets go of the backend
    processor.stop();

    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Pending, 0),
        "pending again, the attempt not counted"
    );
    let again = super::claim_one(&**backend, &q, LEASE).expect("claimable again");
    assert_eq!((again.job.id, again.job.attempt), (id, 1));
    super::done(&**backend, &again);
}

fn job(queue: &str, command: &str, args: &impl serde::Serialize) -> NewJob {
    NewJob::new(command, codec::encode(args).expect("encodes")).queue(queue)
}

fn enqueue(
    backend: &Arc<dyn BaseQueue>,
    queue: &str,
    command: &str,
    args: &impl serde::Serialize,
) -> JobId {
    backend.enqueue(job(queue, command, args)).expect("enqueue")
}

/// A started multi processor of one thread and four async slots, serving
/// `queue` and the async commands' queue, with the maintenance off unless
/// `configure` turns it on.
pub(super) fn start(
    backend: &Arc<dyn BaseQueue>,
    queue: &str,
    configure: impl FnOnce(ProcessorConfig) -> ProcessorConfig,
) -> Started {
    let config = ProcessorConfig::default()
        .queues([queue, ASYNC_QUEUE])
        .wait_time(Duration::from_millis(10))
        .retry(RetryPolicy::immediate())
        .max_threads(1)
        .concurrency(4)
        .maintenance(false);
    let processor = MultiProcessor::new(Arc::clone(backend), configure(config)).expect("processor");
    processor.start();
    Started(processor)
}

/// A started processor that a failing case does not leave running: it is
/// stopped when dropped, its jobs released at once.
pub(super) struct Started(MultiProcessor);

impl Deref for Started {
    type Target = MultiProcessor;

    fn deref(&self) -> &MultiProcessor {
        &self.0
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.0.stop_within(Duration::ZERO);
    }
}

/// Waits up to [`WAIT`] for `done`, polling.
pub(super) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
