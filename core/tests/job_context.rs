//! A command's `JobContext`: filled in by the consumer (by reference or by
//! value, in any position, sync and async), never carried by the job; its
//! progress is stored, its explicit heartbeat extends the lease, and it is
//! cancelled when a stop's grace period ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outband::{
    BaseQueue, Completion, Heartbeat, JobContext, JobId, JobState, Lease, MemoryQueue,
    MultiProcessor, ProcessorConfig, Progress, queue_command,
};
use outband_testkit::wait_until;

/// What a command saw of its context, by the tag it was given.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    id: JobId,
    queue: String,
    key: Option<String>,
    attempt: u32,
    max_attempts: u32,
}

static SEEN: Mutex<Option<HashMap<u64, Seen>>> = Mutex::new(None);

fn see(tag: u64, ctx: &JobContext) {
    let seen = Seen {
        id: ctx.id(),
        queue: ctx.queue().to_owned(),
        key: ctx.key().map(str::to_owned),
        attempt: ctx.attempt(),
        max_attempts: ctx.max_attempts(),
    };
    SEEN.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(tag, seen);
}

fn seen(tag: u64) -> Option<Seen> {
    SEEN.lock().unwrap().as_ref()?.get(&tag).cloned()
}

/// Takes the context first, by reference, with an ordering key.
#[queue_command(queue = "ctx", key = account, retries = 2)]
fn by_ref(ctx: &JobContext, account: String, tag: u64) {
    let _ = &account;
    see(tag, ctx);
}

/// Takes the context last, by value.
#[queue_command(queue = "ctx")]
fn by_value(tag: u64, ctx: JobContext) {
    see(tag, &ctx);
}

/// Reports progress, waits until told to go on, reports again and returns.
#[queue_command(queue = "ctx")]
fn reporting(ctx: &JobContext, gate: u64) {
    ctx.progress(0.25, "a quarter");
    wait_until("the test opens the gate", None, || {
        GATES.lock().unwrap().contains(&gate)
    });
    ctx.progress(1.0, "all of it");
}

static GATES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Asks for a heartbeat now, then waits until the test has seen it.
#[queue_command(queue = "ctx")]
fn beating(ctx: &JobContext, gate: u64) {
    ctx.heartbeat();
    wait_until("the test opens the gate", None, || {
        GATES.lock().unwrap().contains(&gate)
    });
}

/// Runs until its context is cancelled, and says so.
#[queue_command(queue = "ctx")]
fn until_cancelled(ctx: &JobContext, tag: u64) {
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    see(tag, ctx);
}

/// A memory backend that counts heartbeats, to see the explicit one.
struct Counting {
    inner: MemoryQueue,
    heartbeats: AtomicUsize,
}

impl BaseQueue for Counting {
    fn enqueue_many(&self, jobs: Vec<outband::NewJob>) -> Result<Vec<JobId>, outband::Error> {
        self.inner.enqueue_many(jobs)
    }
    fn claim(
        &self,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<outband::Claimed>, outband::Error> {
        self.inner.claim(queue, max, lease)
    }
    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, outband::Error> {
        self.inner.has_jobs_waiting(queue)
    }
    fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, outband::Error> {
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        self.inner.heartbeat(lease, lease_for)
    }
    fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, outband::Error> {
        self.inner.progress(lease, progress)
    }
    fn complete(
        &self,
        lease: &Lease,
        outcome: outband::Outcome,
    ) -> Result<Completion, outband::Error> {
        self.inner.complete(lease, outcome)
    }
    fn recover_expired(&self) -> Result<outband::Recovered, outband::Error> {
        self.inner.recover_expired()
    }
    fn len(&self, queue: &str) -> Result<u64, outband::Error> {
        self.inner.len(queue)
    }
    fn flush(&self, queue: &str) -> Result<u64, outband::Error> {
        self.inner.flush(queue)
    }
    fn stats(&self, queue: &str) -> Result<outband::QueueStats, outband::Error> {
        self.inner.stats(queue)
    }
    fn queues(&self) -> Result<Vec<String>, outband::Error> {
        self.inner.queues()
    }
    fn job(&self, id: JobId) -> Result<Option<outband::Job>, outband::Error> {
        self.inner.job(id)
    }
    fn dead_jobs(
        &self,
        queue: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<outband::Job>, outband::Error> {
        self.inner.dead_jobs(queue, offset, limit)
    }
    fn retry_dead(&self, id: JobId) -> Result<bool, outband::Error> {
        self.inner.retry_dead(id)
    }
    fn delete_dead(&self, id: JobId) -> Result<bool, outband::Error> {
        self.inner.delete_dead(id)
    }
    fn cancel(&self, id: JobId, reason: &str) -> Result<outband::Cancellation, outband::Error> {
        self.inner.cancel(id, reason)
    }
    fn purge(&self, older_than: Duration) -> Result<u64, outband::Error> {
        self.inner.purge(older_than)
    }
    fn claim_tick(&self, name: &str, tick: std::time::SystemTime) -> Result<bool, outband::Error> {
        self.inner.claim_tick(name, tick)
    }
    fn now(&self) -> Result<std::time::SystemTime, outband::Error> {
        self.inner.now()
    }
}

fn config() -> ProcessorConfig {
    ProcessorConfig::default()
        .queues(["ctx"])
        .wait_time(Duration::from_millis(10))
        .max_threads(2)
}

fn state(backend: &dyn BaseQueue, id: JobId) -> outband::Job {
    backend.job(id).unwrap().expect("the job exists")
}

#[test]
fn the_consumer_fills_in_the_context_which_no_job_carries() {
    let backend = Arc::new(MemoryQueue::new());
    let first = by_ref::enqueue_on(&*backend, "acct-7".into(), 1).unwrap();
    let second = by_value::enqueue_on(&*backend, 2).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("both jobs ran", None, || {
        backend.stats("ctx").unwrap().done == 2
    });
    processor.stop();
    assert_eq!(
        seen(1),
        Some(Seen {
            id: first,
            queue: "ctx".into(),
            key: Some("acct-7".into()),
            attempt: 1,
            max_attempts: 3,
        })
    );
    assert_eq!(
        seen(2).map(|seen| (seen.id, seen.key)),
        Some((second, None))
    );
    // the job's arguments are the command's own, without the context
    let job = state(&*backend, second);
    assert_eq!(outband::codec::decode::<(u64,)>(&job.args).unwrap(), (2,));
}

#[test]
fn progress_is_stored_while_running_and_kept_once_done() {
    let backend = Arc::new(MemoryQueue::new());
    let id = reporting::enqueue_on(&*backend, 10).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the first report is stored", None, || {
        state(&*backend, id).progress == Some(Progress::new(0.25, "a quarter"))
    });
    assert_eq!(state(&*backend, id).state, JobState::Running);
    GATES.lock().unwrap().push(10);
    wait_until("the job is done", None, || {
        state(&*backend, id).state == JobState::Done
    });
    processor.stop();
    assert_eq!(
        state(&*backend, id).progress,
        Some(Progress::new(1.0, "all of it")),
        "the last report is stored before the job is done"
    );
}

#[test]
fn an_explicit_heartbeat_extends_the_lease_at_once() {
    let backend = Arc::new(Counting {
        inner: MemoryQueue::new(),
        heartbeats: AtomicUsize::new(0),
    });
    let id = beating::enqueue_on(&*backend, 20).unwrap();
    // with a lease of an hour, no regular heartbeat comes for ten minutes
    let processor =
        MultiProcessor::new(backend.clone(), config().lease(Duration::from_secs(3600))).unwrap();
    processor.start();
    wait_until("the heartbeat is sent", None, || {
        backend.heartbeats.load(Ordering::SeqCst) == 1
    });
    GATES.lock().unwrap().push(20);
    wait_until("the job is done", None, || {
        state(&*backend, id).state == JobState::Done
    });
    processor.stop();
}

#[test]
fn a_stop_cancels_the_context_of_a_job_still_running_at_its_grace_end() {
    let backend = Arc::new(MemoryQueue::new());
    let id = until_cancelled::enqueue_on(&*backend, 30).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the job runs", None, || {
        state(&*backend, id).state == JobState::Running
    });
    let report = processor.stop_within(Duration::from_millis(50));
    assert_eq!(report.released, 1);
    wait_until("the command saw the cancellation", None, || {
        seen(30).is_some()
    });
    processor.stop();
    let job = state(&*backend, id);
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Pending, 0),
        "released, its attempt not counted"
    );
}

#[test]
fn eager_mode_gives_the_context_the_id_it_returns() {
    outband::set_eager(true);
    let id = by_ref("acct-eager".into(), 40).unwrap().id();
    let seen = seen(40).expect("ran inline");
    assert_eq!(seen.id, id);
    assert_eq!(seen.key.as_deref(), Some("acct-eager"));
    assert_eq!((seen.attempt, seen.max_attempts), (1, 3));
}

#[test]
fn a_detached_context_is_for_calling_the_body() {
    let ctx = JobContext::detached();
    by_value::call(50, ctx.clone());
    assert_eq!(seen(50).map(|seen| seen.attempt), Some(1));
    assert!(!ctx.is_cancelled());
    ctx.cancel();
    until_cancelled::call(&ctx, 51);
    assert!(seen(51).is_some(), "returns at once: cancelled already");
}

#[cfg(feature = "runtime")]
mod async_commands {
    use super::*;

    /// An async command taking the context by reference.
    #[queue_command(queue = "ctx-async", key = account)]
    async fn async_by_ref(ctx: &JobContext, account: String, tag: u64) {
        let _ = &account;
        tokio::task::yield_now().await;
        see(tag, ctx);
    }

    /// An async command taking it by value, after its argument.
    #[queue_command(queue = "ctx-async")]
    async fn async_by_value(tag: u64, ctx: JobContext) {
        ctx.progress(0.5, "half");
        see(tag, &ctx);
    }

    #[test]
    fn async_commands_get_the_context_too() {
        let backend = Arc::new(MemoryQueue::new());
        let first = async_by_ref::enqueue_on(&*backend, "acct-1".into(), 60).unwrap();
        let second = async_by_value::enqueue_on(&*backend, 61).unwrap();
        let processor = MultiProcessor::new(
            backend.clone(),
            config().queues(["ctx-async"]).concurrency(4),
        )
        .unwrap();
        processor.start();
        wait_until("both jobs ran", None, || {
            backend.stats("ctx-async").unwrap().done == 2
        });
        processor.stop();
        assert_eq!(
            seen(60).map(|seen| (seen.id, seen.key)),
            Some((first, Some("acct-1".into())))
        );
        assert_eq!(seen(61).map(|seen| seen.id), Some(second));
        assert_eq!(
            state(&*backend, second).progress,
            Some(Progress::new(0.5, "half"))
        );
    }

    #[tokio::test]
    async fn cancelled_completes_once_the_context_is_cancelled() {
        let ctx = JobContext::detached();
        let waiter = {
            let ctx = ctx.clone();
            tokio::spawn(async move { ctx.cancelled().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        ctx.cancel();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("cancelled() completes")
            .unwrap();
    }
}
