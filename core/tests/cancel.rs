//! Cancelling through a running processor: a pending job never runs; a
//! running sync command sees its context cancelled within a heartbeat and
//! its job ends `cancelled`, not retried; a running async command's future
//! is dropped; a finished job is left as it is.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use outband::{
    BaseQueue, CancelFeed, Cancellation, JobContext, JobId, JobState, MemoryQueue, MultiProcessor,
    ProcessorConfig, queue_command,
};
use outband_testkit::wait_until;

static STOPPED: AtomicBool = AtomicBool::new(false);

/// Runs until its context is cancelled, then fails, as a command that
/// gives up would: a retry the cancel turns into `cancelled`.
#[queue_command(queue = "cancel", retries = 5)]
fn until_cancelled(ctx: &JobContext) -> Result<(), String> {
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    STOPPED.store(true, Ordering::SeqCst);
    Err("stopped before the end".into())
}

/// Takes no time.
#[queue_command(queue = "cancel")]
fn quick() {}

/// Runs until its context is cancelled, on a queue of its own.
#[queue_command(queue = "cancel-pushed", retries = 5)]
fn until_pushed(ctx: &JobContext) -> Result<(), String> {
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("stopped before the end".into())
}

fn backend() -> Arc<MemoryQueue> {
    static BACKEND: OnceLock<Arc<MemoryQueue>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let backend = Arc::new(MemoryQueue::new());
            outband::set_default_backend(backend.clone()).unwrap();
            backend
        })
        .clone()
}

/// A short lease, so that heartbeats come every tenth of a second.
fn config() -> ProcessorConfig {
    ProcessorConfig::default()
        .queues(["cancel", "cancel-async"])
        .wait_time(Duration::from_millis(10))
        .lease(Duration::from_millis(600))
}

fn state(id: JobId) -> (JobState, Option<String>) {
    let job = backend().job(id).unwrap().expect("the job exists");
    (job.state, job.last_error)
}

/// A backend that pushes cancels (memory does) stops a running job at
/// once, long before its next heartbeat: with a ten-minute lease the
/// heartbeats come every hundred seconds, and the test waits thirty.
#[test]
fn a_pushed_cancel_stops_a_running_job_before_its_heartbeat() {
    let backend = backend();
    let id = until_pushed().unwrap().id();
    let config = ProcessorConfig::default()
        .queues(["cancel-pushed"])
        .wait_time(Duration::from_millis(10))
        .lease(Duration::from_secs(600));
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    wait_until("the job runs", None, || state(id).0 == JobState::Running);
    assert_eq!(
        outband::cancel(id, "pushed").unwrap(),
        Cancellation::Requested
    );
    wait_until("the job is cancelled", Duration::from_secs(30), || {
        state(id).0 == JobState::Cancelled
    });
    assert_eq!(state(id).1.as_deref(), Some("pushed"));
    processor.stop();
}

/// Runs until its context is cancelled, on a queue of its own.
#[queue_command(queue = "cancel-reopened", retries = 5)]
fn until_pushed_again(ctx: &JobContext) -> Result<(), String> {
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("stopped before the end".into())
}

/// The memory backend, whose first cancel feed fails at its first read.
struct FlakyFeed {
    inner: Arc<MemoryQueue>,
    opened: AtomicUsize,
}

/// A feed whose connection is lost.
struct Broken;

impl CancelFeed for Broken {
    fn next(&mut self, _timeout: Duration) -> Result<Vec<JobId>, outband::Error> {
        Err(outband::Error::unavailable(
            "the feed's connection was lost",
        ))
    }
}

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret { self.inner.$name($($arg),*) })*
    };
}

impl BaseQueue for FlakyFeed {
    fn cancel_feed(&self) -> Result<Option<Box<dyn CancelFeed>>, outband::Error> {
        if self.opened.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(Some(Box::new(Broken)));
        }
        self.inner.cancel_feed()
    }

    forward! {
        enqueue_many(jobs: Vec<outband::NewJob>) -> Result<Vec<JobId>, outband::Error>;
        claim(queue: &str, max: usize, lease: Duration) -> Result<Vec<outband::Claimed>, outband::Error>;
        has_jobs_waiting(queue: &str) -> Result<bool, outband::Error>;
        heartbeat(lease: &outband::Lease, lease_for: Duration) -> Result<outband::Heartbeat, outband::Error>;
        complete(lease: &outband::Lease, outcome: outband::Outcome) -> Result<outband::Completion, outband::Error>;
        recover_expired() -> Result<outband::Recovered, outband::Error>;
        len(queue: &str) -> Result<u64, outband::Error>;
        flush(queue: &str) -> Result<u64, outband::Error>;
        stats(queue: &str) -> Result<outband::QueueStats, outband::Error>;
        queues() -> Result<Vec<String>, outband::Error>;
        job(id: JobId) -> Result<Option<outband::Job>, outband::Error>;
        dead_jobs(queue: &str, offset: usize, limit: usize) -> Result<Vec<outband::Job>, outband::Error>;
        retry_dead(id: JobId) -> Result<bool, outband::Error>;
        delete_dead(id: JobId) -> Result<bool, outband::Error>;
        cancel(id: JobId, reason: &str) -> Result<Cancellation, outband::Error>;
        purge(older_than: Duration) -> Result<u64, outband::Error>;
        claim_tick(name: &str, tick: std::time::SystemTime) -> Result<bool, outband::Error>;
        now() -> Result<std::time::SystemTime, outband::Error>;
    }
}

/// A feed that fails is opened again, and cancels pushed through the new
/// one still stop jobs at once: with a ten-minute lease, the heartbeats
/// would come only every hundred seconds.
#[test]
fn a_failed_cancel_feed_is_opened_again() {
    let flaky = Arc::new(FlakyFeed {
        inner: backend(),
        opened: AtomicUsize::new(0),
    });
    let id = until_pushed_again().unwrap().id();
    let config = ProcessorConfig::default()
        .queues(["cancel-reopened"])
        .wait_time(Duration::from_millis(10))
        .lease(Duration::from_secs(600));
    let processor = MultiProcessor::new(flaky.clone(), config).unwrap();
    processor.start();
    wait_until("the job runs", None, || state(id).0 == JobState::Running);
    wait_until("the failed feed is opened again", None, || {
        flaky.opened.load(Ordering::SeqCst) >= 2
    });
    assert_eq!(
        outband::cancel(id, "pushed again").unwrap(),
        Cancellation::Requested
    );
    wait_until("the job is cancelled", Duration::from_secs(30), || {
        state(id).0 == JobState::Cancelled
    });
    assert_eq!(state(id).1.as_deref(), Some("pushed again"));
    processor.stop();
}

#[test]
fn a_running_sync_job_is_stopped_and_ends_cancelled() {
    let backend = backend();
    let id = until_cancelled().unwrap().id();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the job runs", None, || state(id).0 == JobState::Running);
    assert_eq!(
        outband::cancel(id, "the order was withdrawn").unwrap(),
        Cancellation::Requested
    );
    wait_until("the job is cancelled", None, || {
        state(id).0 == JobState::Cancelled
    });
    assert!(STOPPED.load(Ordering::SeqCst), "the command saw it");
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!(job.last_error.as_deref(), Some("the order was withdrawn"));
    assert_eq!(job.attempt, 1, "not retried");
    assert_eq!(
        outband::cancel(id, "again").unwrap(),
        Cancellation::Finished(JobState::Cancelled)
    );
    processor.stop();
}

#[test]
fn a_pending_job_never_runs_and_a_finished_one_is_left_alone() {
    let backend = backend();
    let later = quick::schedule(Duration::from_secs(3600)).unwrap();
    assert_eq!(later.cancel("not needed").unwrap(), Cancellation::Cancelled);
    let later = later.id();
    let ran = quick().unwrap().id();
    let processor = MultiProcessor::new(backend.clone(), config()).unwrap();
    processor.start();
    wait_until("the other job is done", None, || {
        state(ran).0 == JobState::Done
    });
    processor.stop();
    assert_eq!(
        state(later),
        (JobState::Cancelled, Some("not needed".into()))
    );
    assert_eq!(
        outband::cancel(ran, "too late").unwrap(),
        Cancellation::Finished(JobState::Done)
    );
    assert_eq!(state(ran).0, JobState::Done);
    assert_eq!(
        outband::cancel(JobId(u64::MAX), "who?").unwrap(),
        Cancellation::NotFound
    );
}

#[cfg(feature = "runtime")]
mod async_commands {
    use super::*;

    static DROPPED: AtomicBool = AtomicBool::new(false);

    struct OnDrop;

    impl Drop for OnDrop {
        fn drop(&mut self) {
            DROPPED.store(true, Ordering::SeqCst);
        }
    }

    /// Waits far longer than the test, holding something that says when it
    /// is dropped.
    #[queue_command(queue = "cancel-async")]
    async fn waits_long() {
        let _guard = OnDrop;
        tokio::time::sleep(Duration::from_secs(600)).await;
    }

    #[test]
    fn a_running_async_job_is_dropped_and_ends_cancelled() {
        let backend = backend();
        let id = waits_long().unwrap().id();
        let processor = MultiProcessor::new(backend.clone(), config().concurrency(4)).unwrap();
        processor.start();
        wait_until("the job runs", None, || state(id).0 == JobState::Running);
        assert_eq!(
            outband::cancel(id, "no longer wanted").unwrap(),
            Cancellation::Requested
        );
        wait_until("the job is cancelled", None, || {
            state(id).0 == JobState::Cancelled
        });
        assert!(DROPPED.load(Ordering::SeqCst), "its future was dropped");
        assert_eq!(state(id).1.as_deref(), Some("no longer wanted"));
        processor.stop();
    }
}
