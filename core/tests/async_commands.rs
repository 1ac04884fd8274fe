//! Async commands on the in-memory backend: awaited enqueues, the multi
//! processor running them on its runtime up to its concurrency and apart
//! from its threads, the simple processor, failures, panics, and a stop
//! whose grace period ends while futures are pending.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outband::{
    BaseQueue, JobState, MemoryQueue, MultiProcessor, ProcessorConfig, RetryPolicy,
    SimpleProcessor, queue_command,
};
use outband_testkit::wait_until;

/// Per test run: jobs running now, the most at once, and the tags done.
#[derive(Default)]
struct Log {
    running: usize,
    max_running: usize,
    done: Vec<u32>,
    dropped: usize,
}

static LOGS: Mutex<Option<HashMap<u64, Log>>> = Mutex::new(None);
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

fn with_log<T>(run: u64, f: impl FnOnce(&mut Log) -> T) -> T {
    let mut logs = LOGS.lock().unwrap();
    f(logs
        .get_or_insert_with(HashMap::new)
        .entry(run)
        .or_default())
}

/// Counts a pending future that was dropped before it finished.
struct DropWatch {
    run: u64,
    finished: bool,
}

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.finished {
            with_log(self.run, |log| log.dropped += 1);
        }
    }
}

/// Sleeps on tokio's timer, recording how many ran at once.
#[queue_command(queue = "async")]
async fn nap(run: u64, tag: u32, millis: u64) -> u32 {
    let mut watch = DropWatch {
        run,
        finished: false,
    };
    with_log(run, |log| {
        log.running += 1;
        log.max_running = log.max_running.max(log.running);
    });
    tokio::time::sleep(Duration::from_millis(millis)).await;
    with_log(run, |log| {
        log.running -= 1;
        log.done.push(tag);
    });
    watch.finished = true;
    tag * 2
}

/// Fails after an await, or panics, as told.
#[queue_command(queue = "async", retries = 1)]
async fn trouble(panics: bool) -> Result<(), String> {
    tokio::task::yield_now().await;
    if panics {
        panic!("a panic inside a future");
    }
    Err("an error from a future".into())
}

fn config() -> ProcessorConfig {
    ProcessorConfig::default()
        .queues(["async"])
        .wait_time(Duration::from_millis(10))
        .retry(RetryPolicy::immediate())
}

fn backend() -> Arc<MemoryQueue> {
    Arc::new(MemoryQueue::new())
}

#[test]
fn awaited_enqueues_store_jobs_on_the_backend_given() {
    let backend = backend();
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let ids: Vec<_> = block_on(async {
        let mut ids = Vec::new();
        for tag in 0..3 {
            ids.push(nap::enqueue(run, tag, 1).on(&backend).await.unwrap().id());
        }
        ids
    });
    assert_eq!(backend.len("async").unwrap(), 3);
    for id in ids {
        let job = backend.job(id).unwrap().expect("stored");
        assert_eq!(job.command, nap::NAME);
        assert_eq!(job.state, JobState::Pending);
    }
}

#[test]
fn async_jobs_run_together_on_one_thread_up_to_the_concurrency() {
    let backend = backend();
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    for tag in 0..40 {
        nap::enqueue_on(&*backend, run, tag, 100).unwrap();
    }
    let processor =
        MultiProcessor::new(backend.clone(), config().max_threads(1).concurrency(10)).unwrap();
    processor.start();
    wait_until("all 40 are done", None, || {
        backend.stats("async").unwrap().done == 40
    });
    processor.stop();
    let (max_running, mut done) = with_log(run, |log| (log.max_running, log.done.clone()));
    done.sort_unstable();
    assert_eq!(done, (0..40).collect::<Vec<_>>(), "each ran once");
    assert_eq!(max_running, 10, "ten at once on one thread, never more");
}

#[test]
fn results_of_async_commands_are_stored() {
    let backend = backend();
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let id = nap::enqueue_on(&*backend, run, 21, 1).unwrap();
    let processor = SimpleProcessor::new(backend.clone(), config()).unwrap();
    assert!(
        processor.process_next().unwrap(),
        "the simple processor runs it"
    );
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!(job.state, JobState::Done);
    let result: u32 = outband::codec::decode(job.result.as_deref().unwrap()).unwrap();
    assert_eq!(result, 42);
}

#[test]
fn errors_and_panics_inside_futures_are_failed_attempts() {
    let backend = backend();
    let failing = trouble::enqueue_on(&*backend, false).unwrap();
    let panicking = trouble::enqueue_on(&*backend, true).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config().max_threads(1)).unwrap();
    processor.start();
    wait_until("both are dead", None, || {
        backend.stats("async").unwrap().dead == 2
    });
    processor.stop();
    let failing = backend.job(failing).unwrap().unwrap();
    assert_eq!(failing.attempt, 2, "retried once, then dead");
    assert_eq!(
        failing.last_error.as_deref(),
        Some("an error from a future")
    );
    let panicking = backend.job(panicking).unwrap().unwrap();
    assert_eq!(panicking.attempt, 2);
    assert_eq!(
        panicking.last_error.as_deref(),
        Some("panicked: a panic inside a future")
    );
}

#[test]
fn the_end_of_the_grace_period_drops_pending_futures_and_releases_their_jobs() {
    let backend = backend();
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    for tag in 0..5 {
        nap::enqueue_on(&*backend, run, tag, 60_000).unwrap();
    }
    let processor =
        MultiProcessor::new(backend.clone(), config().max_threads(1).concurrency(3)).unwrap();
    processor.start();
    wait_until("three run", None, || with_log(run, |log| log.running) == 3);
    let report = processor.stop_within(Duration::from_millis(50));
    // the lease limit is one thread plus three slots: three run, one waits
    assert_eq!(report.released, 4, "three running, one waiting for a slot");
    wait_until("three futures are dropped", None, || {
        with_log(run, |log| log.dropped) == 3
    });
    let stats = backend.stats("async").unwrap();
    assert_eq!((stats.pending, stats.running), (5, 0));
    let claimed = backend.claim("async", 5, Duration::from_secs(30)).unwrap();
    assert!(
        claimed.iter().all(|c| c.job.attempt == 1),
        "the released attempts were not counted"
    );
}

/// Once dropped, a processor whose stop released running jobs lets go of
/// its backend and leaves the consumer registry as soon as its threads
/// are done with those jobs: no heartbeat of it beats on.
#[test]
fn a_processor_dropped_after_releasing_jobs_lets_go_of_its_backend() {
    let backend = backend();
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    nap::enqueue_on(&*backend, run, 0, 600_000).unwrap();
    let processor =
        MultiProcessor::new(backend.clone(), config().max_threads(1).concurrency(1)).unwrap();
    processor.start();
    wait_until("the job runs", None, || {
        with_log(run, |log| log.running) == 1
    });
    assert_eq!(backend.consumers().unwrap().len(), 1, "registered");
    let report = processor.stop_within(Duration::from_millis(50));
    assert_eq!(report.released, 1);
    drop(processor);
    wait_until("the processor lets go of its backend", None, || {
        Arc::strong_count(&backend) == 1
    });
    assert_eq!(
        backend.consumers().unwrap().len(),
        0,
        "the consumer unregistered"
    );
}

#[test]
fn a_processor_without_async_commands_holds_no_async_slots() {
    let backend = backend();
    let processor = MultiProcessor::new(
        backend,
        ProcessorConfig::default()
            .queues(["sync-only"])
            .concurrency(0),
    );
    assert!(
        processor.is_ok(),
        "concurrency 0 is fine with no async command"
    );
    let refused = MultiProcessor::new(self::backend(), config().concurrency(0)).unwrap_err();
    assert!(refused.to_string().contains("concurrency"), "{refused}");
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A backend with only the sync contract whose `enqueue_many` blocks until
/// the test's watchdog opens its gate: an awaited enqueue that blocked the
/// thread polling it would keep the watchdog, on the same one-thread
/// runtime, from ever opening it.
struct Gated {
    inner: MemoryQueue,
    gate: Mutex<std::sync::mpsc::Receiver<()>>,
}

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret { self.inner.$name($($arg),*) })*
    };
}

impl BaseQueue for Gated {
    fn enqueue_many(
        &self,
        jobs: Vec<outband::NewJob>,
    ) -> Result<Vec<outband::JobId>, outband::Error> {
        let opened = self
            .gate
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
        if opened.is_err() {
            return Err(outband::Error::backend(
                "the gate never opened: the runtime was blocked",
            ));
        }
        self.inner.enqueue_many(jobs)
    }

    forward! {
        claim(queue: &str, max: usize, lease: Duration) -> Result<Vec<outband::Claimed>, outband::Error>;
        has_jobs_waiting(queue: &str) -> Result<bool, outband::Error>;
        heartbeat(lease: &outband::Lease, lease_for: Duration) -> Result<outband::Heartbeat, outband::Error>;
        complete(lease: &outband::Lease, outcome: outband::Outcome) -> Result<outband::Completion, outband::Error>;
        recover_expired() -> Result<outband::Recovered, outband::Error>;
        len(queue: &str) -> Result<u64, outband::Error>;
        flush(queue: &str) -> Result<u64, outband::Error>;
        stats(queue: &str) -> Result<outband::QueueStats, outband::Error>;
        queues() -> Result<Vec<String>, outband::Error>;
        job(id: outband::JobId) -> Result<Option<outband::Job>, outband::Error>;
        dead_jobs(queue: &str, offset: usize, limit: usize) -> Result<Vec<outband::Job>, outband::Error>;
        retry_dead(id: outband::JobId) -> Result<bool, outband::Error>;
        delete_dead(id: outband::JobId) -> Result<bool, outband::Error>;
        cancel(id: outband::JobId, reason: &str) -> Result<outband::Cancellation, outband::Error>;
        purge(older_than: Duration) -> Result<u64, outband::Error>;
        claim_tick(name: &str, tick: std::time::SystemTime) -> Result<bool, outband::Error>;
        now() -> Result<std::time::SystemTime, outband::Error>;
    }
}

#[test]
fn an_awaited_enqueue_never_blocks_a_current_thread_runtime() {
    let (open, gate) = std::sync::mpsc::channel();
    let backend = Arc::new(Gated {
        inner: MemoryQueue::new(),
        gate: Mutex::new(gate),
    });
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let ids = block_on(async {
        let enqueues: Vec<_> = (0..8)
            .map(|tag| tokio::spawn(nap::enqueue(run, tag, 1).on(&backend).into_future()))
            .collect();
        // the watchdog runs only while no enqueue holds the only thread
        let watchdog = tokio::spawn(async move {
            for _ in 0..8 {
                tokio::task::yield_now().await;
                open.send(()).unwrap();
            }
        });
        let mut ids = Vec::new();
        for enqueue in enqueues {
            ids.push(enqueue.await.unwrap().unwrap());
        }
        watchdog.await.unwrap();
        ids
    });
    assert_eq!(ids.len(), 8);
    assert_eq!(backend.len("async").unwrap(), 8);
}
