//! Timeouts: `timeout = "…"` and an enqueue's own. A sync command sees its
//! context cancelled at the deadline and its outcome stands if it returns
//! within the grace; one that does not is recorded as timed out while its
//! thread stays busy, so the thread cap holds. An async command's future is
//! dropped at the deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outband::{
    BaseQueue, JobContext, JobId, JobState, MemoryQueue, MultiProcessor, ProcessorConfig,
    RetryPolicy, queue_command,
};
use outband_testkit::wait_until;

/// What the commands saw, by tag: the timeout their context gave, and
/// when they started and returned.
#[derive(Clone, Copy, Debug)]
struct Run {
    timeout: Option<Duration>,
    started: Instant,
    returned: Option<Instant>,
}

static RUNS: Mutex<Vec<(u64, Run)>> = Mutex::new(Vec::new());

fn started(tag: u64, ctx: &JobContext) {
    RUNS.lock().unwrap().push((
        tag,
        Run {
            timeout: ctx.timeout(),
            started: Instant::now(),
            returned: None,
        },
    ));
}

fn returned(tag: u64) {
    for (seen, run) in RUNS.lock().unwrap().iter_mut() {
        if *seen == tag {
            run.returned = Some(Instant::now());
        }
    }
}

fn run_of(tag: u64) -> Option<Run> {
    RUNS.lock()
        .unwrap()
        .iter()
        .find(|(seen, _)| *seen == tag)
        .map(|(_, run)| *run)
}

/// Stops when its context says so, and succeeds.
#[queue_command(queue = "timeouts", timeout = "200ms", retries = 0)]
fn stops_when_told(ctx: &JobContext, tag: u64) {
    started(tag, ctx);
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    returned(tag);
}

/// Ignores its context and sleeps on.
#[queue_command(queue = "timeouts", timeout = "100ms", retries = 0)]
fn ignores_it(ctx: &JobContext, tag: u64, millis: u64) {
    started(tag, ctx);
    std::thread::sleep(Duration::from_millis(millis));
    returned(tag);
}

/// Takes no time.
#[queue_command(queue = "timeouts")]
fn quick(ctx: &JobContext, tag: u64) {
    started(tag, ctx);
    returned(tag);
}

fn config() -> ProcessorConfig {
    ProcessorConfig::default()
        .queues(["timeouts"])
        .wait_time(Duration::from_millis(10))
        .retry(RetryPolicy::immediate())
        .timeout_grace(Duration::from_millis(300))
}

fn job(backend: &dyn BaseQueue, id: JobId) -> outband::Job {
    backend.job(id).unwrap().expect("the job exists")
}

#[test]
fn a_sync_command_that_stops_at_its_deadline_keeps_its_outcome() {
    let backend = Arc::new(MemoryQueue::new());
    let id = stops_when_told::enqueue_on(&*backend, 1).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the job is done", None, || {
        job(&*backend, id).state == JobState::Done
    });
    processor.stop();
    let run = run_of(1).expect("ran");
    assert_eq!(run.timeout, Some(Duration::from_millis(200)));
    let ran = run.returned.expect("returned") - run.started;
    assert!(ran >= Duration::from_millis(200), "stopped at {ran:?}");
}

#[test]
fn a_sync_command_past_its_grace_is_recorded_as_timed_out_and_keeps_its_thread() {
    let backend = Arc::new(MemoryQueue::new());
    let slow = ignores_it::enqueue_on(&*backend, 10, 4_000).unwrap();
    let next = quick::enqueue_on(&*backend, 11).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config().max_threads(1)).unwrap();
    processor.start();
    wait_until("the slow job is dead", None, || {
        job(&*backend, slow).state == JobState::Dead
    });
    let dead_at = Instant::now();
    let dead = job(&*backend, slow);
    assert_eq!(dead.last_error.as_deref(), Some("timed out after 100ms"));
    let run = run_of(10).expect("started");
    assert!(
        run.returned.is_none(),
        "recorded before its command returned"
    );
    assert!(dead_at - run.started >= Duration::from_millis(400));
    wait_until("the next job is done", None, || {
        job(&*backend, next).state == JobState::Done
    });
    processor.stop();
    let slow_returned = run_of(10).and_then(|run| run.returned).expect("returned");
    assert!(
        run_of(11).expect("ran").started >= slow_returned,
        "the one thread ran nothing else until the slow command returned"
    );
    assert_eq!(
        job(&*backend, slow).state,
        JobState::Dead,
        "its late outcome was discarded"
    );
}

#[test]
fn an_enqueue_s_own_timeout_replaces_the_command_s() {
    let backend = Arc::new(MemoryQueue::new());
    let own = stops_when_told::job(2)
        .unwrap()
        .timeout(Duration::from_millis(50));
    let id = backend.enqueue(own).unwrap();
    assert_eq!(job(&*backend, id).timeout, Some(Duration::from_millis(50)));
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the job is done", None, || {
        job(&*backend, id).state == JobState::Done
    });
    processor.stop();
    assert_eq!(
        run_of(2).expect("ran").timeout,
        Some(Duration::from_millis(50))
    );
}

#[test]
fn a_command_without_a_timeout_has_no_deadline() {
    let backend = Arc::new(MemoryQueue::new());
    let id = quick::enqueue_on(&*backend, 3).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the job is done", None, || {
        job(&*backend, id).state == JobState::Done
    });
    processor.stop();
    assert_eq!(run_of(3).expect("ran").timeout, None);
}

#[cfg(feature = "runtime")]
mod async_commands {
    use super::*;

    /// Sleeps far past its timeout.
    #[queue_command(queue = "timeouts-async", timeout = "150ms", retries = 1)]
    async fn sleeps_on(ctx: &JobContext, tag: u64) {
        started(tag, ctx);
        tokio::time::sleep(Duration::from_secs(30)).await;
        returned(tag);
    }

    #[test]
    fn an_async_command_is_dropped_at_its_deadline_and_retried() {
        let backend = Arc::new(MemoryQueue::new());
        let id = sleeps_on::enqueue_on(&*backend, 20).unwrap();
        let processor =
            MultiProcessor::new(backend.clone(), config().queues(["timeouts-async"])).unwrap();
        processor.start();
        let begun = Instant::now();
        wait_until("both attempts timed out", None, || {
            job(&*backend, id).state == JobState::Dead
        });
        processor.stop();
        let dead = job(&*backend, id);
        assert_eq!(dead.attempt, 2, "retried once, as `retries = 1` says");
        assert_eq!(dead.last_error.as_deref(), Some("timed out after 150ms"));
        assert!(run_of(20).expect("ran").returned.is_none(), "dropped");
        assert!(begun.elapsed() < Duration::from_secs(25), "not waited out");
    }

    #[tokio::test]
    async fn an_awaited_enqueue_takes_its_own_timeout() {
        let backend = Arc::new(MemoryQueue::new());
        let id = sleeps_on::enqueue(21)
            .timeout(Duration::from_secs(2))
            .on(&backend)
            .await
            .unwrap()
            .id();
        assert_eq!(job(&*backend, id).timeout, Some(Duration::from_secs(2)));
    }
}
