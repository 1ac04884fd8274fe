//! The processors of seed 003 with sleeping jobs: the simple one keeps enqueue
//! order, the multi one never runs more than its threads and finishes short
//! jobs first; ordering keys never overlap; heartbeats keep long jobs' leases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outband::{
    BaseQueue, JobState, MemoryQueue, MultiProcessor, Prefetch, ProcessorConfig, SimpleProcessor,
    queue_command,
};
use outband_testkit::poll_until;

/// What one test run saw: (job tag, start, end), in finishing order, and the
/// most jobs that ran at once.
#[derive(Default)]
struct Log {
    finished: Vec<(u32, Instant, Instant)>,
    running: usize,
    max_running: usize,
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

/// Sleeps, recording when it ran under its test run's log.
#[queue_command(queue = "sleepy")]
fn sleep_job(run: u64, tag: u32, millis: u64) {
    let start = started(run);
    std::thread::sleep(Duration::from_millis(millis));
    finished(run, tag, start);
}

/// A job of test run `run` starts: it counts as running from now on.
fn started(run: u64) -> Instant {
    with_log(run, |log| {
        log.running += 1;
        log.max_running = log.max_running.max(log.running);
    });
    Instant::now()
}

/// Job `tag` of test run `run`, started at `start`, ends.
fn finished(run: u64, tag: u32, start: Instant) {
    with_log(run, |log| {
        log.running -= 1;
        log.finished.push((tag, start, Instant::now()));
    });
}

/// Naps without taking a thread, recording when it ran as `sleep_job` does;
/// in a queue of its own, since a processor that serves an async command
/// holds leases for its async slots.
#[queue_command(queue = "napping")]
async fn async_nap(run: u64, tag: u32, millis: u64) {
    let start = started(run);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    finished(run, tag, start);
}

/// Sleeps with an ordering key.
#[queue_command(queue = "sleepy", key = key)]
fn keyed_sleep(run: u64, tag: u32, millis: u64, key: String) {
    let _ = &key;
    sleep_job::call(run, tag, millis);
}

fn config(threads: usize) -> ProcessorConfig {
    ProcessorConfig::default()
        .queues(["sleepy"])
        .wait_time(Duration::from_millis(10))
        .max_threads(threads)
}

/// How often a wait polls: some conditions recover expired leases, so how
/// often they run is part of what the test checks.
const POLL: Duration = Duration::from_millis(5);

fn all_done(backend: &MemoryQueue, jobs: u64) -> bool {
    backend.stats("sleepy").unwrap().done == jobs
}

fn enqueue_sleeps(backend: &MemoryQueue, run: u64, jobs: &[(u32, u64)]) {
    for &(tag, millis) in jobs {
        sleep_job::enqueue_on(backend, run, tag, millis).unwrap();
    }
}

fn finish_order(run: u64) -> Vec<u32> {
    with_log(run, |log| {
        log.finished.iter().map(|&(tag, ..)| tag).collect()
    })
}

#[test]
fn simple_processor_runs_one_job_at_a_time_in_enqueue_order() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    enqueue_sleeps(&backend, run, &[(1, 40), (2, 100), (3, 0), (4, 80)]);
    let processor = SimpleProcessor::new(backend.clone(), config(1)).unwrap();
    assert!(processor.has_jobs_waiting().unwrap());
    assert!(processor.process_next().unwrap(), "one step by hand");
    processor.start();
    assert!(processor.is_processing());
    poll_until("all jobs are done", None, POLL, || all_done(&backend, 4));
    processor.stop();
    assert!(!processor.is_processing());
    assert_eq!(finish_order(run), vec![1, 2, 3, 4]);
    assert_eq!(with_log(run, |log| log.max_running), 1);
}

#[test]
fn multi_processor_finishes_short_jobs_first() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    enqueue_sleeps(&backend, run, &[(1, 300), (2, 900), (3, 0), (4, 150)]);
    let processor = MultiProcessor::new(backend.clone(), config(5)).unwrap();
    assert_eq!(processor.max_threads(), 5);
    processor.start();
    poll_until("all jobs are done", None, POLL, || all_done(&backend, 4));
    processor.stop();
    assert_eq!(finish_order(run), vec![3, 4, 1, 2]);
    // jobs 1, 2 and 4 run side by side (job 3 may be over before they start)
    assert!(with_log(run, |log| log.max_running) >= 3);
}

#[test]
fn multi_processor_never_runs_more_than_its_threads() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    enqueue_sleeps(&backend, run, &[(1, 100), (2, 200), (3, 150), (4, 300)]);
    let processor = MultiProcessor::new(backend.clone(), config(2)).unwrap();
    processor.start();
    poll_until("all jobs are done", None, POLL, || all_done(&backend, 4));
    processor.stop();
    assert_eq!(
        with_log(run, |log| log.max_running),
        2,
        "two threads, both used, never three"
    );
    // job 3 had to wait for a free thread, so it finishes third, not first
    assert_eq!(finish_order(run), vec![1, 2, 3, 4]);
}

#[test]
fn jobs_with_one_key_never_overlap_and_other_keys_do() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    for tag in 0..6 {
        keyed_sleep::enqueue_on(&*backend, run, tag, 30, "ci-job-1".into()).unwrap();
    }
    let processor = MultiProcessor::new(backend.clone(), config(4)).unwrap();
    processor.start();
    poll_until("all keyed jobs are done", None, POLL, || {
        all_done(&backend, 6)
    });
    let same_key = with_log(run, |log| log.finished.clone());
    assert_eq!(
        same_key.iter().map(|&(tag, ..)| tag).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    for pair in same_key.windows(2) {
        let ((_, _, end), (_, next_start, _)) = (pair[0], pair[1]);
        assert!(end <= next_start, "jobs with one key overlapped");
    }
    assert_eq!(with_log(run, |log| log.max_running), 1);

    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    for tag in 0..4 {
        keyed_sleep::enqueue_on(&*backend, run, tag, 300, format!("ci-job-{tag}")).unwrap();
    }
    poll_until("all jobs with distinct keys are done", None, POLL, || {
        all_done(&backend, 10)
    });
    processor.stop();
    assert!(
        with_log(run, |log| log.max_running) >= 2,
        "jobs with different keys ran in parallel"
    );
}

/// Panics on purpose.
#[queue_command(queue = "sleepy", retries = 0)]
fn boom() {
    panic!("boom");
}

#[test]
fn a_worker_thread_survives_a_panicking_job() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    let panicked = boom::enqueue_on(&backend).unwrap();
    let after = sleep_job::enqueue_on(&backend, run, 1, 0).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config(1)).unwrap();
    processor.start();
    poll_until("the job after the panic is done", None, POLL, || {
        backend.job(after).unwrap().unwrap().state == JobState::Done
    });
    processor.stop();
    let job = backend.job(panicked).unwrap().unwrap();
    assert_eq!(
        (job.state, job.last_error.as_deref()),
        (JobState::Dead, Some("panicked: boom"))
    );
}

#[test]
fn heartbeats_keep_a_long_job_leased() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    let id = sleep_job::enqueue_on(&backend, run, 1, 1000).unwrap();
    let config = config(1).lease(Duration::from_millis(300));
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    let mut recovered = 0;
    poll_until("the long job is done", None, POLL, || {
        recovered += backend.recover_expired().unwrap().requeued;
        all_done(&backend, 1)
    });
    processor.stop();
    assert_eq!(recovered, 0, "the manager never took the job back");
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Done, 1));
}

#[test]
fn stop_within_a_grace_period_releases_what_still_runs() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    let short = sleep_job::enqueue_on(&backend, run, 1, 0).unwrap();
    let long = sleep_job::enqueue_on(&backend, run, 2, 3000).unwrap();
    let processor = MultiProcessor::new(backend.clone(), config(2)).unwrap();
    processor.start();
    poll_until("the long job runs", None, POLL, || {
        backend.job(long).unwrap().unwrap().state == JobState::Running
            && backend.job(short).unwrap().unwrap().state == JobState::Done
    });
    let report = processor.stop_within(Duration::from_millis(50));
    assert_eq!(report.released, 1);
    let job = backend.job(long).unwrap().unwrap();
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Pending, 0),
        "released, attempt not counted"
    );
}

/// A [`MemoryQueue`] whose outcomes wait at a gate until it opens.
struct Gated {
    inner: Arc<MemoryQueue>,
    open: Mutex<bool>,
    opened: std::sync::Condvar,
    waiting: AtomicU64,
    /// What `capabilities().in_process` answers: whether workers claim for
    /// themselves or the completer claims for them with their outcomes.
    cheap: bool,
    /// Jobs handed out by `claim` on its own.
    claimed_alone: AtomicU64,
    /// Jobs completed by `complete_and_claim`, and jobs it handed out.
    completed_claiming: AtomicU64,
    claimed_with_outcomes: AtomicU64,
    /// How long each call that claims takes, as a round trip would.
    call_time: Duration,
}

impl Gated {
    fn new(inner: Arc<MemoryQueue>, open: bool, cheap: bool) -> Self {
        Self {
            inner,
            open: Mutex::new(open),
            opened: std::sync::Condvar::new(),
            waiting: AtomicU64::new(0),
            cheap,
            claimed_alone: AtomicU64::new(0),
            completed_claiming: AtomicU64::new(0),
            claimed_with_outcomes: AtomicU64::new(0),
            call_time: Duration::ZERO,
        }
    }

    fn with_call_time(mut self, call_time: Duration) -> Self {
        self.call_time = call_time;
        self
    }

    fn pass(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl BaseQueue for Gated {
    fn enqueue_many(
        &self,
        jobs: Vec<outband::NewJob>,
    ) -> Result<Vec<outband::JobId>, outband::Error> {
        self.inner.enqueue_many(jobs)
    }
    fn claim(
        &self,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<outband::Claimed>, outband::Error> {
        std::thread::sleep(self.call_time);
        let claimed = self.inner.claim(queue, max, lease)?;
        self.claimed_alone
            .fetch_add(claimed.len() as u64, Ordering::SeqCst);
        Ok(claimed)
    }
    fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), outband::Error> {
        self.inner.wait(queues, timeout)
    }
    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, outband::Error> {
        self.inner.has_jobs_waiting(queue)
    }
    fn heartbeat(
        &self,
        lease: &outband::Lease,
        lease_for: Duration,
    ) -> Result<outband::Heartbeat, outband::Error> {
        self.inner.heartbeat(lease, lease_for)
    }
    fn complete(
        &self,
        lease: &outband::Lease,
        outcome: outband::Outcome,
    ) -> Result<outband::Completion, outband::Error> {
        self.pass();
        self.inner.complete(lease, outcome)
    }
    fn complete_many(
        &self,
        completions: Vec<(outband::Lease, outband::Outcome)>,
    ) -> Result<Vec<outband::Completion>, outband::Error> {
        self.pass();
        self.inner.complete_many(completions)
    }
    fn complete_and_claim(
        &self,
        completions: Vec<(outband::Lease, outband::Outcome)>,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<(Vec<outband::Completion>, Vec<outband::Claimed>), outband::Error> {
        self.pass();
        std::thread::sleep(self.call_time);
        let completed = completions.len() as u64;
        let (done, claimed) = self
            .inner
            .complete_and_claim(completions, queue, max, lease)?;
        self.completed_claiming
            .fetch_add(completed, Ordering::SeqCst);
        self.claimed_with_outcomes
            .fetch_add(claimed.len() as u64, Ordering::SeqCst);
        Ok((done, claimed))
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
    fn job(&self, id: outband::JobId) -> Result<Option<outband::Job>, outband::Error> {
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
    fn retry_dead(&self, id: outband::JobId) -> Result<bool, outband::Error> {
        self.inner.retry_dead(id)
    }
    fn delete_dead(&self, id: outband::JobId) -> Result<bool, outband::Error> {
        self.inner.delete_dead(id)
    }
    fn cancel(
        &self,
        id: outband::JobId,
        reason: &str,
    ) -> Result<outband::Cancellation, outband::Error> {
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
    fn capabilities(&self) -> outband::Capabilities {
        outband::Capabilities::default().in_process(self.cheap)
    }
}

/// A crash loses the outcomes of jobs not yet completed, and their jobs run again:
/// a thread whose outcome waits must not take another job beyond those
/// claimed ahead, or a crash could make more jobs run twice than the
/// processor has threads plus its prefetch.
fn holds_no_more_leases_than_threads_while_outcomes_wait(
    cheap: bool,
    prefetch: usize,
    completers: usize,
) {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    let tags: Vec<(u32, u64)> = (1..=10).map(|tag| (tag, 0)).collect();
    enqueue_sleeps(&inner, run, &tags);
    let backend = Arc::new(Gated::new(inner.clone(), false, cheap));
    let config = config(2).prefetch(prefetch).completers(completers);
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    poll_until("an outcome waits at the gate", None, POLL, || {
        backend.waiting.load(Ordering::SeqCst) > 0
    });
    // time enough for free threads to claim every other job
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        inner.stats("sleepy").unwrap().running,
        2 + prefetch as u64,
        "two threads and a prefetch of {prefetch} hold that many leases, however many outcomes wait ({completers} completers)"
    );
    backend.open();
    poll_until("all jobs are done", None, POLL, || all_done(&inner, 10));
    processor.stop();
    assert_eq!(finish_order(run).len(), 10, "every job ran once");
}

#[test]
fn multi_processor_holds_no_more_leases_than_threads_while_outcomes_wait() {
    holds_no_more_leases_than_threads_while_outcomes_wait(true, 0, 1);
    holds_no_more_leases_than_threads_while_outcomes_wait(true, 0, 2);
}

/// The same where the completer claims each worker's next job in the call
/// that completes its job (`BaseQueue::complete_and_claim`).
#[test]
fn multi_processor_claiming_with_outcomes_holds_no_more_leases_than_threads() {
    holds_no_more_leases_than_threads_while_outcomes_wait(false, 0, 1);
    holds_no_more_leases_than_threads_while_outcomes_wait(false, 0, 2);
}

/// With a prefetch, the jobs claimed ahead are the only leases added.
#[test]
fn multi_processor_holds_no_more_leases_than_threads_plus_prefetch() {
    for completers in [1, 2, 3] {
        holds_no_more_leases_than_threads_while_outcomes_wait(false, 3, completers);
        holds_no_more_leases_than_threads_while_outcomes_wait(true, 3, completers);
    }
}

/// The most leases `backend` held while `jobs` jobs ran to the end under
/// `config`, sampled every millisecond.
fn most_leases_held(
    inner: &MemoryQueue,
    backend: Arc<Gated>,
    config: ProcessorConfig,
    jobs: u64,
) -> u64 {
    most_leases_held_in("sleepy", inner, backend, config, jobs)
}

/// [`most_leases_held`] in `queue`.
fn most_leases_held_in(
    queue: &str,
    inner: &MemoryQueue,
    backend: Arc<Gated>,
    config: ProcessorConfig,
    jobs: u64,
) -> u64 {
    let processor = MultiProcessor::new(backend, config.queues([queue])).unwrap();
    processor.start();
    let mut most = 0;
    loop {
        let stats = inner.stats(queue).unwrap();
        if stats.done == jobs {
            break;
        }
        most = most.max(stats.running);
        std::thread::sleep(Duration::from_millis(1));
    }
    processor.stop();
    most
}

/// The default adaptive prefetch claims nothing ahead of jobs that take
/// longer than a call: two threads hold two leases, so that another
/// consumer may run the jobs they would have held.
#[test]
fn adaptive_prefetch_holds_nothing_ahead_of_jobs_longer_than_a_call() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    let tags: Vec<(u32, u64)> = (1..=8).map(|tag| (tag, 100)).collect();
    enqueue_sleeps(&inner, run, &tags);
    let backend = Arc::new(Gated::new(inner.clone(), true, false));
    let config = config(2);
    assert_eq!(config.prefetch, Prefetch::default());
    assert_eq!(most_leases_held(&inner, backend, config, 8), 2);
    assert_eq!(finish_order(run).len(), 8, "every job ran once");
}

/// Where a call takes longer than the jobs, the adaptive prefetch claims
/// ahead up to its most, and never beyond.
#[test]
fn adaptive_prefetch_claims_ahead_of_short_jobs_up_to_its_most() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    let tags: Vec<(u32, u64)> = (1..=200).map(|tag| (tag, 0)).collect();
    enqueue_sleeps(&inner, run, &tags);
    let backend =
        Arc::new(Gated::new(inner.clone(), true, false).with_call_time(Duration::from_millis(3)));
    let config = config(2).adaptive_prefetch(6);
    assert_eq!(
        most_leases_held(&inner, backend, config, 200),
        8,
        "two threads and six ahead"
    );
    assert_eq!(finish_order(run).len(), 200, "every job ran once");
}

/// The async slots are held ahead of as the threads are: where a call
/// takes longer than the async jobs, the adaptive prefetch claims ahead of
/// the slots up to its most, so that a freed slot finds its next job
/// already claimed.
#[test]
fn adaptive_prefetch_claims_ahead_of_short_async_jobs_up_to_its_most() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    for tag in 1..=200 {
        async_nap::enqueue_on(&*inner, run, tag, 0).unwrap();
    }
    let backend =
        Arc::new(Gated::new(inner.clone(), true, false).with_call_time(Duration::from_millis(3)));
    let config = config(2).concurrency(4).adaptive_prefetch(6);
    assert_eq!(
        most_leases_held_in("napping", &inner, backend, config, 200),
        12,
        "two threads, four async slots and six ahead"
    );
    assert_eq!(finish_order(run).len(), 200, "every job ran once");
}

/// Async jobs longer than a call get nothing ahead: the processor holds
/// its threads' and its slots' leases only.
#[test]
fn adaptive_prefetch_holds_nothing_ahead_of_async_jobs_longer_than_a_call() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    for tag in 1..=12 {
        async_nap::enqueue_on(&*inner, run, tag, 100).unwrap();
    }
    let backend = Arc::new(Gated::new(inner.clone(), true, false));
    let config = config(2).concurrency(4);
    assert_eq!(config.prefetch, Prefetch::default());
    assert_eq!(
        most_leases_held_in("napping", &inner, backend, config, 12),
        6
    );
    assert_eq!(finish_order(run).len(), 12, "every job ran once");
}

/// Each completer completes its share of the leases, and their calls
/// overlap: with the backend's answer held back, as many calls wait as the
/// processor has completers, each with outcomes of its own, and the leases
/// stay bounded.
fn completing_calls_in_flight(completers: Option<usize>) -> u64 {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    let tags: Vec<(u32, u64)> = (1..=12).map(|tag| (tag, 0)).collect();
    enqueue_sleeps(&inner, run, &tags);
    let backend = Arc::new(Gated::new(inner.clone(), false, false));
    let mut config = config(2).prefetch(2);
    config.completers = completers;
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    poll_until("an outcome waits at the gate", None, POLL, || {
        backend.waiting.load(Ordering::SeqCst) > 0
    });
    // time enough for every held job to run and its outcome to be handed over
    std::thread::sleep(Duration::from_millis(300));
    let waiting = backend.waiting.load(Ordering::SeqCst);
    assert_eq!(
        inner.stats("sleepy").unwrap().running,
        4,
        "two threads and a prefetch of 2 hold 4 leases ({completers:?} completers)"
    );
    backend.open();
    poll_until("all jobs are done", None, POLL, || all_done(&inner, 12));
    processor.stop();
    assert_eq!(finish_order(run).len(), 12, "every job ran once");
    waiting
}

#[test]
fn completers_complete_in_overlapping_calls() {
    assert_eq!(
        completing_calls_in_flight(Some(1)),
        1,
        "one completer: one call"
    );
    assert_eq!(
        completing_calls_in_flight(Some(2)),
        2,
        "two completers: two calls"
    );
    // unset, the backend's default completers (2) counts
    assert_eq!(completing_calls_in_flight(None), 2, "the backend's choice");
}

#[test]
fn a_multi_processor_needs_a_completer() {
    let backend = Arc::new(MemoryQueue::new());
    let error = MultiProcessor::new(backend, config(2).completers(0)).unwrap_err();
    assert!(matches!(error, outband::Error::Config(_)), "{error}");
}

/// A job claimed ahead waits for a thread longer than its lease: the
/// heartbeat keeps it, so no other consumer gets it and it runs once.
#[test]
fn heartbeats_keep_jobs_claimed_ahead_leased() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    enqueue_sleeps(&backend, run, &[(1, 400), (2, 400), (3, 0)]);
    let config = config(1).prefetch(2).lease(Duration::from_millis(300));
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    poll_until("three jobs are leased", None, POLL, || {
        backend.stats("sleepy").unwrap().running == 3
    });
    let mut recovered = 0;
    poll_until("every job is done", None, POLL, || {
        recovered += backend.recover_expired().unwrap().requeued;
        all_done(&backend, 3)
    });
    processor.stop();
    assert_eq!(recovered, 0, "the manager never took a job back");
    assert_eq!(finish_order(run), vec![1, 2, 3], "each job ran once");
}

/// A job claimed ahead is held but not running: `held` counts it, so a
/// graceful stop that waits for `held` to reach zero lets it run.
#[test]
fn held_counts_jobs_claimed_ahead_that_running_does_not() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    enqueue_sleeps(&backend, run, &[(1, 1000), (2, 0), (3, 0)]);
    let processor = MultiProcessor::new(backend.clone(), config(1).prefetch(2)).unwrap();
    processor.start();
    poll_until(
        "one job runs and two wait for the thread",
        None,
        POLL,
        || (processor.running(), processor.held()) == (1, 3),
    );
    processor.stop_claiming();
    poll_until("nothing is held", None, POLL, || processor.held() == 0);
    assert_eq!(
        finish_order(run),
        vec![1, 2, 3],
        "the jobs claimed ahead ran"
    );
    assert!(all_done(&backend, 3));
    processor.stop();
}

/// A stop whose grace period ends gives back the jobs claimed ahead with
/// the running one, and no thread runs them afterwards.
#[test]
fn stop_within_a_grace_period_releases_jobs_claimed_ahead() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let backend = Arc::new(MemoryQueue::new());
    enqueue_sleeps(&backend, run, &[(1, 500), (2, 0), (3, 0)]);
    let processor = MultiProcessor::new(backend.clone(), config(1).prefetch(2)).unwrap();
    processor.start();
    poll_until("three jobs are leased", None, POLL, || {
        backend.stats("sleepy").unwrap().running == 3
    });
    let report = processor.stop_within(Duration::from_millis(50));
    assert_eq!(report.released, 3, "the running job and the two ahead");
    // the running job's command goes on until it returns
    poll_until("the long job has returned", None, POLL, || {
        !finish_order(run).is_empty()
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        finish_order(run),
        vec![1],
        "no job claimed ahead ran after the stop"
    );
    let stats = backend.stats("sleepy").unwrap();
    assert_eq!((stats.pending, stats.running, stats.done), (3, 0, 0));
    processor.stop();
}

/// A claim still in flight when the grace period ends brings jobs leased
/// to this processor: the stop releases them as they land, rather than let
/// them run after it or keep their leases until they expire. On both
/// processors: the call that completes job 1 and claims the next waits at
/// the gate while the stop begins. Without a prefetch, that call claims one
/// job for the one thread.
macro_rules! stop_within_releases_the_jobs_of_a_claim_in_flight {
    ($test:ident, $processor:ident, $config:expr) => {
        #[test]
        fn $test() {
            let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
            let inner = Arc::new(MemoryQueue::new());
            enqueue_sleeps(&inner, run, &[(1, 0), (2, 0), (3, 0)]);
            let backend = Arc::new(Gated::new(inner.clone(), false, false));
            let processor = $processor::new(backend.clone(), $config).unwrap();
            processor.start();
            poll_until(
                "job 1's outcome and the next claim wait at the gate",
                None,
                POLL,
                || backend.waiting.load(Ordering::SeqCst) > 0,
            );
            assert_eq!(processor.held(), 2, "job 1, and the job its call may bring");
            let report = std::thread::scope(|scope| {
                let stop = scope.spawn(|| processor.stop_within(Duration::ZERO));
                poll_until("the stop has begun", None, POLL, || {
                    !processor.is_processing()
                });
                // past the stop's first release: the claim lands afterwards
                std::thread::sleep(Duration::from_millis(50));
                backend.open();
                stop.join().unwrap()
            });
            assert_eq!(report.released, 1, "job 2, claimed as the stop began");
            processor.stop();
            assert_eq!(
                finish_order(run),
                vec![1],
                "job 2 did not run after the stop"
            );
            let stats = inner.stats("sleepy").unwrap();
            assert_eq!((stats.pending, stats.running, stats.done), (2, 0, 1));
        }
    };
}

stop_within_releases_the_jobs_of_a_claim_in_flight!(
    multi_stop_within_releases_the_jobs_of_a_claim_in_flight,
    MultiProcessor,
    config(1).completers(1).prefetch(0)
);
stop_within_releases_the_jobs_of_a_claim_in_flight!(
    simple_stop_within_releases_the_jobs_of_a_claim_in_flight,
    SimpleProcessor,
    config(1)
);

/// A busy simple processor completes each job and claims the next job in
/// one call: only its first job comes from a claim on its own.
#[test]
fn simple_processor_completes_a_job_and_claims_the_next_in_one_call() {
    let run = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
    let inner = Arc::new(MemoryQueue::new());
    let tags: Vec<(u32, u64)> = (1..=10).map(|tag| (tag, 0)).collect();
    enqueue_sleeps(&inner, run, &tags);
    let backend = Arc::new(Gated::new(inner.clone(), true, false));
    let processor = SimpleProcessor::new(backend.clone(), config(1)).unwrap();
    processor.start();
    poll_until("all jobs are done", None, POLL, || all_done(&inner, 10));
    processor.stop();
    assert_eq!(finish_order(run), (1..=10).collect::<Vec<u32>>());
    let count = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
    assert_eq!(
        (
            count(&backend.claimed_alone),
            count(&backend.completed_claiming),
            count(&backend.claimed_with_outcomes)
        ),
        (1, 10, 9),
        "jobs claimed alone, jobs completed with a claim, jobs claimed with outcomes"
    );
}
