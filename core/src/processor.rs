//! The two processors that run jobs: [`SimpleProcessor`] and [`MultiProcessor`].
//!
//! Both claim jobs from a [`BaseQueue`], run the registered command, and
//! report the outcome, as lovely.remotetask's processors do:
//!
//! - [`SimpleProcessor`] runs one job at a time, in enqueue order. It suits
//!   jobs that use a whole machine, and anything that must not overlap.
//! - [`MultiProcessor`] runs up to `max_threads` jobs at once (default 5).
//!   It holds at most `max_threads + prefetch` leases (default prefetch 0):
//!   a lease is free once its job's outcome is recorded, so by default the
//!   processor claims only for a free thread and never holds more leases
//!   than it has threads. The call that records the outcomes of the jobs
//!   that finished together also claims as many next jobs as it frees
//!   leases ([`BaseQueue::complete_and_claim`]): under load, each batch of
//!   jobs costs one round trip (one transaction on SQL databases).
//!
//! **Prefetch.** With [`ProcessorConfig::prefetch`] `n`, the multi processor
//! also claims up to `n` jobs ahead of its threads, as Celery's workers
//! prefetch: a thread that finishes takes its next job at once, while its
//! outcome is recorded, and the calls serve up to `max_threads + n` jobs
//! between them. That is what short jobs need to go faster than one round
//! trip per `max_threads` jobs: on this project's benchmark machine, 4
//! threads with a prefetch of 28 process several times more no-op jobs a
//! second than without (README, Benchmark). The price is the crash bound: a consumer
//! killed with its leases held makes up to `max_threads + n` jobs run again,
//! not `max_threads`. Jobs claimed ahead are heartbeated like running
//! ones, so they keep their leases however long they wait; a stop lets
//! them run, or, once the grace period ends, releases them back to the
//! queue unrun with the running ones.
//!
//! **Completers.** Up to [`ProcessorConfig::completers`] such calls are in
//! flight at once, each recording up to its share of the leases: while the
//! backend records one batch and claims its next jobs, the workers run the
//! jobs the other call brought. By default the backend chooses
//! ([`BaseQueue::overlapping_completions`]): 2 on Redis, PostgreSQL and
//! MySQL, where on the benchmark machine two overlapping calls of 16 process
//! about half again as many no-op jobs a second as one call of 32; 1 on
//! SQLite, whose writes go one at a time, where two were slower.
//!
//! Both offer the same steps, which tests and custom loops can call one by one
//! — [`has_jobs_waiting`](SimpleProcessor::has_jobs_waiting),
//! [`claim_next_job`](SimpleProcessor::claim_next_job),
//! [`process`](SimpleProcessor::process),
//! [`process_next`](SimpleProcessor::process_next) — and a background loop,
//! [`start`](SimpleProcessor::start) and [`stop`](SimpleProcessor::stop).
//!
//! **Outcomes.** A command that returns normally completes the job as `done`,
//! with its return value stored. One that returns `Err`, panics, or names a
//! command this program does not have fails the attempt: the job is retried
//! after a backoff ([`RetryPolicy`]) while attempts are left, then goes to
//! `dead` with the error recorded. Arguments that cannot be decoded can never
//! run, so that job goes to `dead` at once. A panic is caught; the thread
//! lives on.
//!
//! **Leases.** While the loop runs, a heartbeat thread extends the lease of
//! every job that has run for a third of its lease. If a lease is lost anyway
//! (the backend took the job back), that is logged, and the late completion
//! changes nothing.
//!
//! **Waiting.** With nothing to claim, the loop calls
//! [`BaseQueue::wait`] for up to `wait_time` (default 1 s): backends that can
//! wake it do so as soon as a job is enqueued.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::registry::RunError;
use crate::{
    BaseQueue, Claimed, Completion, Error, Heartbeat, Job, JobId, Lease, Outcome, Registry,
};

/// How long to wait before retrying a failed attempt: exponential, capped,
/// with jitter so that jobs failing together do not retry together.
///
/// The delay after attempt `n` (1-based) is `base × 2ⁿ⁻¹`, capped at `max`,
/// then multiplied by a random factor in `[1 − jitter, 1 + jitter]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The delay after the first failed attempt. Default 1 s.
    pub base: Duration,
    /// The longest delay. Default 1 h.
    pub max: Duration,
    /// Relative jitter, between 0 and 1. Default 0.25.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl RetryPolicy {
    /// Retries at once: for tests.
    pub fn immediate() -> Self {
        Self {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// The delay before the attempt after attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let delay = self.base.saturating_mul(1 << exponent).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        delay.mul_f64(1.0 - jitter + 2.0 * jitter * fastrand::f64())
    }
}

/// Settings shared by both processors.
#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// The queues to claim from, in turn. Empty (the default) means every
    /// queue that has a registered command, or `default` if there is none.
    pub queues: Vec<String>,
    /// The idle wait after a claim that found nothing. Default 1 s.
    pub wait_time: Duration,
    /// Each further empty claim multiplies the idle wait by this factor, up to
    /// `max_wait_time`; a claimed job resets it (the djutils consumer's `-b`).
    /// Default 1: a steady `wait_time`.
    pub wait_backoff: f64,
    /// The longest idle wait when `wait_backoff` grows it. Default 60 s.
    pub max_wait_time: Duration,
    /// How long a claim leases a job; heartbeats extend it. Default 30 s.
    pub lease: Duration,
    /// Jobs the [`MultiProcessor`] runs at once. Default 5.
    pub max_threads: usize,
    /// Jobs the [`MultiProcessor`] may hold claimed beyond one per thread,
    /// so that the next jobs are claimed while the last ones run (Celery's
    /// prefetch). Default 0: the processor never holds more leases than it
    /// has threads, and claims only for a free thread. With `n`, a busy
    /// processor records outcomes and claims up to `max_threads + n` jobs per
    /// call, at the cost of up to `n` more jobs run again after a crash.
    /// Prefetched jobs are heartbeated like running ones, and run before a
    /// stop ends, or are released back to the queue with the running ones.
    pub prefetch: usize,
    /// How many calls that record outcomes (each claiming the next jobs as
    /// well) the [`MultiProcessor`] may have in flight at once; each records
    /// up to its share of the leases. With 2, while one call waits for the
    /// backend, the workers run the jobs the other brought and their
    /// outcomes are gathered for the next call, so the backend's time and
    /// the processor's overlap; 1 makes one call at a time, serving all the
    /// leases. Default `None`: the backend's
    /// [`overlapping_completions`](BaseQueue::overlapping_completions), 2 on
    /// Redis, PostgreSQL and MySQL, 1 on SQLite, whose writes go one at a
    /// time. It changes neither the lease bound nor what a crash makes run
    /// again.
    pub completers: Option<usize>,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            wait_time: Duration::from_secs(1),
            wait_backoff: 1.0,
            max_wait_time: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            max_threads: 5,
            prefetch: 0,
            completers: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl ProcessorConfig {
    /// Sets the queues to claim from.
    #[must_use]
    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the longest idle wait between claims.
    #[must_use]
    pub fn wait_time(mut self, wait_time: Duration) -> Self {
        self.wait_time = wait_time;
        self
    }

    /// Grows the idle wait by `factor` after each empty claim, up to `max`:
    /// polling backends then poll less often while the queue stays empty.
    /// Backends that wake a waiting consumer still wake it at once.
    #[must_use]
    pub fn wait_backoff(mut self, factor: f64, max: Duration) -> Self {
        self.wait_backoff = factor;
        self.max_wait_time = max;
        self
    }

    /// The idle wait after `idle` empty claims in a row before this one.
    fn idle_wait_time(&self, idle: i32) -> Duration {
        if idle == 0 {
            return self.wait_time;
        }
        let grown = self.wait_time.as_secs_f64() * self.wait_backoff.max(1.0).powi(idle);
        Duration::from_secs_f64(grown.min(self.max_wait_time.as_secs_f64())).max(self.wait_time)
    }

    /// Sets the lease.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets how many jobs the multi processor runs at once.
    #[must_use]
    pub fn max_threads(mut self, max_threads: usize) -> Self {
        self.max_threads = max_threads;
        self
    }

    /// Sets how many jobs the multi processor may hold claimed beyond one per
    /// thread: see [`prefetch`](Self::prefetch).
    #[must_use]
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Sets how many recording calls the multi processor may have in flight
    /// at once: see [`completers`](Self::completers).
    #[must_use]
    pub fn completers(mut self, completers: usize) -> Self {
        self.completers = Some(completers);
        self
    }

    /// Sets the backoff between attempts.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// How [`process`](SimpleProcessor::process) ended for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    /// The command succeeded; the job is `done`.
    Done,
    /// The attempt failed; the job will be retried after `delay`.
    Retried {
        /// The backoff.
        delay: Duration,
        /// Why it failed.
        error: String,
    },
    /// The job went to `dead`.
    Dead {
        /// Why.
        error: String,
    },
    /// The lease had been lost, so the outcome was discarded.
    LeaseLost,
}

/// What a stop with a grace period did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Jobs still held at the end of the grace period (running, or claimed
    /// and not started, including those of a claim then in flight),
    /// released back to the queue with their attempt not counted. When it
    /// is not zero, the processor's threads were left running: a released
    /// job's command goes on until it returns, and its outcome is
    /// discarded.
    pub released: usize,
}

struct InFlight {
    lease: Lease,
    /// When the job was claimed: its lease is due for a heartbeat a third of
    /// the lease later.
    claimed: Instant,
    /// A worker has started it; a job claimed ahead (prefetched) has not.
    started: bool,
    lost: bool,
    /// The command has returned; only its outcome is still to be recorded.
    finished: bool,
}

/// An attempt that has run, with the outcome still to be recorded.
struct Finished {
    job: Job,
    lease: Lease,
    outcome: Outcome,
    elapsed: Duration,
}

/// The part both processors share: claiming in turn over the queues, running
/// one job, heartbeats and the table of jobs in flight.
struct Engine {
    queue: Arc<dyn BaseQueue>,
    registry: &'static Registry,
    config: ProcessorConfig,
    queues: Vec<String>,
    next_queue: AtomicUsize,
    in_flight: Mutex<HashMap<JobId, InFlight>>,
    /// The most jobs the loops' claims in flight may still bring: counted
    /// from before each call until its jobs are in `in_flight`, so that a
    /// stop never sees nothing held while the backend has leased jobs to
    /// this processor.
    claims_in_flight: AtomicUsize,
    /// A stop released the jobs held: jobs that claims bring afterwards are
    /// released as they are held, and never started.
    releasing: AtomicBool,
    /// Jobs the stop released back to the queue, those of late claims too.
    released: AtomicUsize,
    claiming: AtomicBool,
    /// Whether free workers claim for themselves: see `BaseQueue::cheap_claims`.
    self_claims: bool,
}

impl Engine {
    fn new(
        queue: Arc<dyn BaseQueue>,
        config: ProcessorConfig,
        registry: &'static Registry,
    ) -> Result<Self, Error> {
        let queues = if !config.queues.is_empty() {
            config.queues.clone()
        } else if registry.is_empty() {
            vec![crate::DEFAULT_QUEUE.to_owned()]
        } else {
            registry.queues().into_iter().map(str::to_owned).collect()
        };
        if config.lease.is_zero() {
            return Err(Error::Config("the lease must be longer than zero".into()));
        }
        Ok(Self {
            self_claims: queue.cheap_claims(),
            queue,
            registry,
            config,
            queues,
            next_queue: AtomicUsize::new(0),
            in_flight: Mutex::new(HashMap::new()),
            claims_in_flight: AtomicUsize::new(0),
            releasing: AtomicBool::new(false),
            released: AtomicUsize::new(0),
            claiming: AtomicBool::new(false),
        })
    }

    fn in_flight(&self) -> MutexGuard<'_, HashMap<JobId, InFlight>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn has_jobs_waiting(&self) -> Result<bool, Error> {
        for queue in &self.queues {
            if self.queue.has_jobs_waiting(queue)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Claims up to `max` jobs, trying each queue in turn, starting after the
    /// one that was tried first last time so no queue starves.
    fn claim(&self, max: usize) -> Result<Vec<Claimed>, Error> {
        let start = self.next_queue.fetch_add(1, Ordering::Relaxed);
        let mut claimed = Vec::new();
        for i in 0..self.queues.len() {
            let queue = &self.queues[(start + i) % self.queues.len()];
            claimed.extend(
                self.queue
                    .claim(queue, max - claimed.len(), self.config.lease)?,
            );
            if claimed.len() == max {
                break;
            }
        }
        Ok(claimed)
    }

    /// Claims up to `max` jobs for the loops and holds them (see
    /// [`hold`](Self::hold)): from the call to the backend until they are
    /// held, they count as claims in flight.
    fn claim_held(&self, max: usize) -> Result<Vec<Claimed>, Error> {
        self.claims_in_flight.fetch_add(max, Ordering::SeqCst);
        let claimed = self.claim(max);
        if let Ok(claimed) = &claimed {
            self.hold(claimed);
        }
        self.claims_in_flight.fetch_sub(max, Ordering::SeqCst);
        claimed
    }

    /// Waits for a job after an empty claim; `idle` counts the empty claims
    /// in a row, which grow the wait with `wait_backoff`.
    fn idle_wait(&self, idle: &mut i32) {
        let wait = self.config.idle_wait_time(*idle);
        *idle = idle.saturating_add(1).min(1000);
        if let Err(error) = self.queue.wait(&self.queues, wait) {
            log::warn!("waiting for jobs failed: {error}");
            std::thread::sleep(wait);
        }
    }

    /// Runs one claimed job and records its outcome.
    fn process(&self, claimed: Claimed) -> Result<Processed, Error> {
        let finished = self.execute(claimed);
        let completion = self
            .queue
            .complete(&finished.lease, finished.outcome.clone());
        self.settle(finished, completion)
    }

    /// Keeps claimed jobs that no worker has started yet under heartbeat, so
    /// that a job claimed ahead keeps its lease while it waits for a thread.
    /// Once a stop has released the jobs held, the jobs of a claim that was
    /// then in flight are released at once instead, and marked so that no
    /// thread starts them.
    fn hold(&self, claimed: &[Claimed]) {
        if claimed.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut in_flight = self.in_flight();
        // read under the lock that `release_in_flight` takes after setting it
        let releasing = self.releasing.load(Ordering::SeqCst);
        for c in claimed {
            let mut entry = InFlight::new(c.lease.clone(), now, false);
            entry.lost = releasing;
            in_flight.insert(c.job.id, entry);
        }
        drop(in_flight);
        if releasing {
            self.release(claimed.iter().map(|c| c.lease.clone()).collect());
        }
    }

    /// Marks a job held by [`hold`](Self::hold) as started. `false` when its
    /// lease was lost or released while it waited: then it must not run here.
    fn begin(&self, claimed: &Claimed) -> bool {
        let mut in_flight = self.in_flight();
        let entry = in_flight
            .entry(claimed.job.id)
            .or_insert_with(|| InFlight::new(claimed.lease.clone(), Instant::now(), false));
        if entry.lost {
            in_flight.remove(&claimed.job.id);
            log::warn!(
                "job {} lost its lease before it started; it was not run here",
                claimed.job.id
            );
            return false;
        }
        entry.started = true;
        true
    }

    /// Runs one claimed job; its outcome is for the caller to record.
    fn execute(&self, claimed: Claimed) -> Finished {
        let Claimed { job, lease } = claimed;
        self.in_flight()
            .entry(job.id)
            .and_modify(|entry| entry.started = true)
            .or_insert_with(|| InFlight::new(lease.clone(), Instant::now(), true));
        log::info!("job {} {} {} started", job.id, job.command, Attempt(&job));
        let started = Instant::now();
        let outcome = self.run(&job, started);
        let elapsed = started.elapsed();
        if let Some(entry) = self.in_flight().get_mut(&job.id) {
            entry.finished = true;
        }
        Finished {
            job,
            lease,
            outcome,
            elapsed,
        }
    }

    /// Records the outcomes of several attempts in one call to the backend,
    /// trying again while the backend is unavailable: a lost outcome would
    /// make the job run twice once its lease expires.
    fn record_many(&self, finished: Vec<Finished>) {
        let _ = self.record_and_claim(finished, 0);
    }

    /// Records the outcomes of several attempts and, in the same call, claims
    /// up to `want` jobs for the threads that ran them
    /// ([`BaseQueue::complete_and_claim`]), trying again while the backend is
    /// unavailable: a lost outcome would make the job run twice once its
    /// lease expires. The claim starts at the next queue in turn; where that
    /// queue has fewer than `want` ready, the other queues are asked after.
    /// The jobs claimed are held (see [`hold`](Self::hold)).
    fn record_and_claim(&self, finished: Vec<Finished>, want: usize) -> Vec<Claimed> {
        let start = self.next_queue.fetch_add(1, Ordering::Relaxed);
        self.claims_in_flight.fetch_add(want, Ordering::SeqCst);
        let claimed = self.record_and_claim_calls(finished, want, start);
        self.hold(&claimed);
        self.claims_in_flight.fetch_sub(want, Ordering::SeqCst);
        claimed
    }

    /// The calls of [`record_and_claim`](Self::record_and_claim).
    fn record_and_claim_calls(
        &self,
        finished: Vec<Finished>,
        want: usize,
        start: usize,
    ) -> Vec<Claimed> {
        let first = &self.queues[start % self.queues.len()];
        let completions = || {
            finished
                .iter()
                .map(|f| (f.lease.clone(), f.outcome.clone()))
                .collect()
        };
        let mut backoff = Duration::from_millis(50);
        let results = loop {
            let attempt = if want == 0 {
                self.queue
                    .complete_many(completions())
                    .map(|done| (done, Vec::new()))
            } else {
                self.queue
                    .complete_and_claim(completions(), first, want, self.config.lease)
            };
            match attempt {
                Err(error) if error.is_retryable() && backoff < self.config.lease / 2 => {
                    log::warn!(
                        "recording {} outcomes failed, retrying: {error}",
                        finished.len()
                    );
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(error) => break Err(error),
                Ok(results) => break Ok(results),
            }
        };
        match results {
            Ok((results, mut claimed)) => {
                for (finished, completion) in finished.into_iter().zip(results) {
                    let _ = self.settle(finished, Ok(completion));
                }
                for i in 1..self.queues.len() {
                    if claimed.len() >= want {
                        break;
                    }
                    let queue = &self.queues[(start + i) % self.queues.len()];
                    match self
                        .queue
                        .claim(queue, want - claimed.len(), self.config.lease)
                    {
                        Ok(more) => claimed.extend(more),
                        Err(error) => {
                            log::error!("claiming failed: {error}");
                            break;
                        }
                    }
                }
                claimed
            }
            Err(error) => {
                log::error!(
                    "recording {} outcomes failed; their leases will expire and the jobs run again: {error}",
                    finished.len()
                );
                let mut in_flight = self.in_flight();
                for finished in &finished {
                    in_flight.remove(&finished.job.id);
                }
                Vec::new()
            }
        }
    }

    /// Logs how an attempt ended once its outcome was recorded (or not).
    fn settle(
        &self,
        finished: Finished,
        completion: Result<Completion, Error>,
    ) -> Result<Processed, Error> {
        self.in_flight().remove(&finished.job.id);
        let Finished {
            job,
            outcome,
            elapsed,
            ..
        } = finished;
        let (id, command, attempt) = (job.id, &job.command, Attempt(&job));
        if completion? == Completion::LeaseLost {
            log::warn!(
                "job {id} {command} {attempt} ended after {elapsed:?} but its lease was lost; \
                 its outcome was discarded"
            );
            return Ok(Processed::LeaseLost);
        }
        Ok(match outcome {
            Outcome::Done { .. } | Outcome::Release => {
                log::info!("job {id} {command} {attempt} done in {elapsed:?}");
                Processed::Done
            }
            Outcome::Retry { delay, error } => {
                log::warn!(
                    "job {id} {command} {attempt} failed in {elapsed:?}, retry in {delay:?}: {error}"
                );
                Processed::Retried { delay, error }
            }
            Outcome::Dead { error } => {
                log::error!("job {id} {command} {attempt} failed in {elapsed:?}, dead: {error}");
                Processed::Dead { error }
            }
        })
    }

    fn run(&self, job: &Job, started: Instant) -> Outcome {
        let command = match self.registry.get(&job.command) {
            Ok(command) => command,
            // a consumer running newer code may know it: a failed attempt
            Err(error) => return self.failed(job, error.to_string()),
        };
        match catch_unwind(AssertUnwindSafe(|| (command.run)(&job.args))) {
            Ok(Ok(result)) => Outcome::Done {
                result,
                duration: started.elapsed(),
            },
            Ok(Err(RunError::Args(error))) => Outcome::Dead {
                error: format!("undecodable arguments: {error}"),
            },
            Ok(Err(RunError::Failed(error))) => self.failed(job, error),
            Ok(Err(RunError::Output(error))) => {
                log::warn!("job {} {}: result not stored: {error}", job.id, job.command);
                Outcome::Done {
                    result: None,
                    duration: started.elapsed(),
                }
            }
            Err(panic) => self.failed(job, format!("panicked: {}", panic_message(&*panic))),
        }
    }

    fn failed(&self, job: &Job, error: String) -> Outcome {
        if job.has_attempts_left() {
            Outcome::Retry {
                delay: self.config.retry.delay(job.attempt),
                error,
            }
        } else {
            Outcome::Dead { error }
        }
    }

    /// Extends the lease of every job that has run for a third of its lease.
    fn heartbeat_once(&self) {
        let due = self.config.lease / 3;
        let leases: Vec<Lease> = self
            .in_flight()
            .values()
            .filter(|f| !f.lost && f.claimed.elapsed() >= due)
            .map(|f| f.lease.clone())
            .collect();
        for lease in leases {
            match self.queue.heartbeat(&lease, self.config.lease) {
                Ok(Heartbeat::Extended(_)) => {}
                Ok(Heartbeat::LeaseLost) => {
                    log::warn!(
                        "job {} lost its lease while running; its outcome will be discarded",
                        lease.job
                    );
                    if let Some(f) = self.in_flight().get_mut(&lease.job) {
                        f.lost = true;
                    }
                }
                Err(error) => log::warn!("heartbeat of job {} failed: {error}", lease.job),
            }
        }
    }

    /// Gives every job still running back to the queue, unrun.
    /// Jobs claimed ahead that no worker has started are released too, and
    /// marked so that no worker starts them afterwards; so are those of
    /// claims still in flight, as they come (see [`hold`](Self::hold)).
    fn release_in_flight(&self) {
        self.releasing.store(true, Ordering::SeqCst);
        let leases: Vec<Lease> = self
            .in_flight()
            .values_mut()
            // a lost lease is another's now, or was released already
            .filter(|f| !f.finished && !f.lost)
            .map(|f| {
                f.lost = true;
                f.lease.clone()
            })
            .collect();
        self.release(leases);
    }

    /// Releases `leases` back to the queue, counted in `released`.
    fn release(&self, leases: Vec<Lease>) {
        for lease in leases {
            match self.queue.complete(&lease, Outcome::Release) {
                Ok(Completion::Applied) => {
                    log::info!("job {} released back to the queue", lease.job);
                    self.released.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Completion::LeaseLost) => {}
                Err(error) => log::error!("releasing job {} failed: {error}", lease.job),
            }
        }
    }

    /// Jobs started and not yet recorded.
    fn running(&self) -> usize {
        self.in_flight().values().filter(|f| f.started).count()
    }

    /// Leases held: running, recorded-to-be, and claimed ahead; and the
    /// most jobs the claims in flight may bring.
    fn held(&self) -> usize {
        self.in_flight().len() + self.claims_in_flight.load(Ordering::SeqCst)
    }
}

impl InFlight {
    fn new(lease: Lease, claimed: Instant, started: bool) -> Self {
        Self {
            lease,
            claimed,
            started,
            lost: false,
            finished: false,
        }
    }
}

/// Formats as `attempt 2/4`, only when a log line is written.
struct Attempt<'a>(&'a Job);

impl std::fmt::Display for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attempt {}/{}", self.0.attempt, self.0.max_attempts)
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// The background threads of a started processor.
struct Threads {
    handles: Vec<JoinHandle<()>>,
    heartbeat: JoinHandle<()>,
    heartbeat_stop: Arc<(Mutex<bool>, Condvar)>,
}

/// Spawns a named thread of a processor.
fn spawn(name: String, run: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(run)
        .expect("spawning a thread")
}

impl Threads {
    /// Starts a processor's background loop unless it already runs: `spawn_loop`
    /// starts the loop's threads, and the heartbeat comes with them.
    fn start(
        engine: &Arc<Engine>,
        threads: &Mutex<Option<Threads>>,
        spawn_loop: impl FnOnce() -> Vec<JoinHandle<()>>,
    ) {
        let mut threads = threads.lock().unwrap_or_else(PoisonError::into_inner);
        if threads.is_some() {
            return;
        }
        engine.releasing.store(false, Ordering::SeqCst);
        engine.released.store(0, Ordering::SeqCst);
        engine.claiming.store(true, Ordering::SeqCst);
        let (heartbeat, heartbeat_stop) = Self::start_heartbeat(engine);
        *threads = Some(Threads {
            handles: spawn_loop(),
            heartbeat,
            heartbeat_stop,
        });
    }

    fn start_heartbeat(engine: &Arc<Engine>) -> (JoinHandle<()>, Arc<(Mutex<bool>, Condvar)>) {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (engine, signal) = (Arc::clone(engine), Arc::clone(&stop));
        let handle = spawn("outband-heartbeat".into(), move || {
            let period = (engine.config.lease / 6).max(Duration::from_millis(10));
            let (lock, condvar) = &*signal;
            let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !*stopped {
                stopped = condvar
                    .wait_timeout(stopped, period)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
                if !*stopped {
                    engine.heartbeat_once();
                }
            }
        });
        (handle, stop)
    }

    /// Joins the loop threads, then stops the heartbeat, which beats for the
    /// running jobs until the last one has finished.
    fn join(self) {
        for handle in self.handles {
            if handle.join().is_err() {
                log::error!("a processor thread panicked outside a job");
            }
        }
        let (lock, condvar) = &*self.heartbeat_stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        condvar.notify_all();
        if self.heartbeat.join().is_err() {
            log::error!("the heartbeat thread panicked");
        }
    }
}

macro_rules! processor_steps {
    () => {
        /// Whether any of the processor's queues has a job ready to claim.
        pub fn has_jobs_waiting(&self) -> Result<bool, Error> {
            self.engine.has_jobs_waiting()
        }

        /// Claims the next ready job, if any, leasing it to this processor.
        pub fn claim_next_job(&self) -> Result<Option<Claimed>, Error> {
            Ok(self.engine.claim(1)?.pop())
        }

        /// Runs a claimed job here and now and records its outcome.
        pub fn process(&self, job: Claimed) -> Result<Processed, Error> {
            self.engine.process(job)
        }

        /// Claims the next ready job and runs it here and now. Returns `false`
        /// when no job was ready.
        pub fn process_next(&self) -> Result<bool, Error> {
            match self.claim_next_job()? {
                Some(job) => self.process(job).map(|_| true),
                None => Ok(false),
            }
        }

        /// The queues this processor claims from.
        pub fn queues(&self) -> &[String] {
            &self.engine.queues
        }

        /// Whether the background loop runs and claims jobs.
        pub fn is_processing(&self) -> bool {
            self.engine.claiming.load(Ordering::SeqCst)
        }

        /// The number of jobs running now.
        pub fn running(&self) -> usize {
            self.engine.running()
        }

        /// The number of jobs whose lease this processor holds: running,
        /// claimed and not yet started by a thread, or finished with their
        /// outcome not yet recorded. A graceful stop waits until it is zero:
        /// [`running`](Self::running) can be zero for a moment while a claim's
        /// jobs are on their way to the threads.
        pub fn held(&self) -> usize {
            self.engine.held()
        }

        /// Stops claiming new jobs; jobs already running go on. The loop keeps
        /// its threads until [`stop`](Self::stop).
        pub fn stop_claiming(&self) {
            self.engine.claiming.store(false, Ordering::SeqCst);
        }

        /// Stops claiming and waits for the running jobs to finish.
        pub fn stop(&self) {
            self.stop_claiming();
            let threads = self
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(threads) = threads {
                threads.join();
            }
        }

        /// Stops claiming and waits up to `grace` for the jobs held (see
        /// [`held`](Self::held)) to finish; what is still held then is
        /// released back to the queue, its attempt not counted, and a late
        /// outcome is discarded.
        pub fn stop_within(&self, grace: Duration) -> StopReport {
            self.stop_claiming();
            let deadline = Instant::now() + grace;
            while self.engine.held() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.engine.release_in_flight();
            // A claim in flight brings jobs leased already, which it releases
            // as they come: wait for them rather than leave their leases to
            // expire.
            let landing = Instant::now() + CLAIM_LANDING;
            while self.engine.claims_in_flight.load(Ordering::SeqCst) > 0
                && Instant::now() < landing
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            let released = self.engine.released.load(Ordering::SeqCst);
            if released == 0 {
                self.stop();
            }
            StopReport { released }
        }
    };
}

/// Runs one job at a time, in enqueue order (seed: lovely.remotetask's
/// `SimpleProcessor`). While jobs keep coming, one call to the backend
/// records a job's outcome and claims the next
/// ([`BaseQueue::complete_and_claim`]).
///
/// ```
/// use outband::{MemoryQueue, ProcessorConfig, SimpleProcessor};
/// use std::sync::Arc;
///
/// let queue = Arc::new(MemoryQueue::new());
/// let processor = SimpleProcessor::new(queue, ProcessorConfig::default())?;
/// assert!(!processor.process_next()?); // nothing to do yet
/// # Ok::<(), outband::Error>(())
/// ```
pub struct SimpleProcessor {
    engine: Arc<Engine>,
    threads: Mutex<Option<Threads>>,
}

impl std::fmt::Debug for SimpleProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleProcessor")
            .field("queues", &self.engine.queues)
            .finish()
    }
}

impl SimpleProcessor {
    /// A processor over `queue`. Fails if the command registry is invalid
    /// (two commands with one name) or the configuration is.
    pub fn new(queue: Arc<dyn BaseQueue>, config: ProcessorConfig) -> Result<Self, Error> {
        Self::with_registry(queue, config, Registry::global()?)
    }

    /// A processor that runs the commands of `registry` instead of those
    /// linked into the program: the benchmark's, which are not registered.
    pub(crate) fn with_registry(
        queue: Arc<dyn BaseQueue>,
        config: ProcessorConfig,
        registry: &'static Registry,
    ) -> Result<Self, Error> {
        Ok(Self {
            engine: Arc::new(Engine::new(queue, config, registry)?),
            threads: Mutex::new(None),
        })
    }

    processor_steps!();

    /// Starts the background loop: one thread that claims and runs one job
    /// at a time. Does nothing if it already runs.
    pub fn start(&self) {
        Threads::start(&self.engine, &self.threads, || {
            let engine = Arc::clone(&self.engine);
            vec![spawn("outband-simple".into(), move || simple_loop(&engine))]
        });
    }
}

fn simple_loop(engine: &Engine) {
    let claiming = || engine.claiming.load(Ordering::SeqCst);
    let mut idle = 0;
    // the job the call that recorded the last outcome claimed, if any
    let mut next: Option<Claimed> = None;
    // a job claimed while the processor was claiming runs, as in the multi
    // processor, even when a stop came in the meantime
    while next.is_some() || claiming() {
        let job = match next.take() {
            Some(job) => job,
            None => match engine.claim_held(1).map(|mut jobs| jobs.pop()) {
                Ok(Some(job)) => {
                    idle = 0;
                    job
                }
                Ok(None) => {
                    engine.idle_wait(&mut idle);
                    continue;
                }
                Err(error) => {
                    log::error!("claiming failed: {error}");
                    engine.idle_wait(&mut idle);
                    continue;
                }
            },
        };
        // not when a stop released it while its claim was in flight
        if !engine.begin(&job) {
            continue;
        }
        let finished = engine.execute(job);
        // one call records the outcome and claims the next job
        next = engine
            .record_and_claim(vec![finished], usize::from(claiming()))
            .pop();
    }
}

/// Runs up to `max_threads` jobs at once, claiming only for free threads
/// (seed: lovely.remotetask's `MultiProcessor`).
///
/// ```
/// use outband::{MemoryQueue, MultiProcessor, ProcessorConfig};
/// use std::sync::Arc;
///
/// let processor = MultiProcessor::new(Arc::new(MemoryQueue::new()), ProcessorConfig::default())?;
/// assert_eq!(processor.max_threads(), 5);
/// # Ok::<(), outband::Error>(())
/// ```
pub struct MultiProcessor {
    engine: Arc<Engine>,
    threads: Mutex<Option<Threads>>,
}

impl std::fmt::Debug for MultiProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiProcessor")
            .field("queues", &self.engine.queues)
            .field("max_threads", &self.engine.config.max_threads)
            .finish()
    }
}

/// The jobs and leases of a started multi processor, shared by its claimer,
/// its completer and its workers.
#[derive(Default)]
struct Pool {
    /// Claimed jobs that no worker has started yet.
    jobs: VecDeque<Claimed>,
    /// Jobs started whose outcome no call is recording yet.
    running: usize,
    /// Leases held (jobs waiting in `jobs`, running, or with their outcome
    /// still to be recorded) plus those a claim in flight may bring: never
    /// more than `Shared::limit` once the outcomes being recorded are counted
    /// out.
    leases: usize,
    /// The processor stopped claiming: workers end once no lease is left.
    closed: bool,
    /// Outcomes in the completers' calls now: their leases are still
    /// counted in `leases` until the call returns.
    recording: usize,
}

struct Shared {
    pool: Mutex<Pool>,
    /// Signals workers that a job was handed over, or a lease given up.
    work: Condvar,
    /// Signals the claimer that a lease was given up.
    free: Condvar,
    /// The most leases the processor holds: `max_threads + prefetch`.
    limit: usize,
    /// The most outcomes a completer waits for before it calls the backend:
    /// its share of `limit`.
    gather: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the jobs a claim brought (held already) to the workers, and
    /// gives up the `reserved` leases counted for it and the `recorded`
    /// ones whose outcomes it recorded.
    fn hand_out(&self, claimed: Vec<Claimed>, reserved: usize, recorded: usize) {
        let mut pool = self.lock();
        pool.leases = pool.leases + claimed.len() - reserved - recorded;
        pool.recording -= recorded;
        let freed = pool.leases < self.limit;
        pool.jobs.extend(claimed);
        drop(pool);
        self.work.notify_all();
        if freed {
            self.free.notify_one();
        }
    }

    /// Gives up the lease of a job a worker took from the pool and that no
    /// completer call records: its outcome was recorded by the worker, or
    /// the job was not run.
    fn give_up(&self) {
        let mut pool = self.lock();
        pool.running -= 1;
        pool.leases -= 1;
        drop(pool);
        self.work.notify_all();
        self.free.notify_one();
    }
}

impl MultiProcessor {
    /// A processor over `queue` with `config.max_threads` threads (at least 1).
    /// Fails if the command registry is invalid or the configuration is.
    pub fn new(queue: Arc<dyn BaseQueue>, config: ProcessorConfig) -> Result<Self, Error> {
        Self::with_registry(queue, config, Registry::global()?)
    }

    /// A processor that runs the commands of `registry` instead of those
    /// linked into the program: see [`SimpleProcessor::with_registry`].
    pub(crate) fn with_registry(
        queue: Arc<dyn BaseQueue>,
        config: ProcessorConfig,
        registry: &'static Registry,
    ) -> Result<Self, Error> {
        if config.max_threads == 0 {
            return Err(Error::Config("max_threads must be at least 1".into()));
        }
        if config.completers == Some(0) {
            return Err(Error::Config("completers must be at least 1".into()));
        }
        Ok(Self {
            engine: Arc::new(Engine::new(queue, config, registry)?),
            threads: Mutex::new(None),
        })
    }

    /// The most jobs it runs at once.
    pub fn max_threads(&self) -> usize {
        self.engine.config.max_threads
    }

    processor_steps!();

    /// Starts the background loop: `max_threads` workers run the jobs,
    /// `completers` threads record their outcomes and claim their next jobs
    /// in the same call, taking turns, and a claimer claims when leases are
    /// free and no completer has anything to record. Does nothing if it
    /// already runs.
    pub fn start(&self) {
        Threads::start(&self.engine, &self.threads, || {
            let config = &self.engine.config;
            let limit = config.max_threads.saturating_add(config.prefetch);
            let completers = config
                .completers
                .unwrap_or_else(|| self.engine.queue.overlapping_completions())
                .max(1);
            let shared = Arc::new(Shared {
                pool: Mutex::new(Pool::default()),
                work: Condvar::new(),
                free: Condvar::new(),
                limit,
                gather: limit.div_ceil(completers).clamp(1, RECORD_BATCH),
            });
            let (outcomes, recorded) = mpsc::channel();
            let mut handles = Vec::new();
            for i in 0..config.max_threads {
                let (engine, shared) = (Arc::clone(&self.engine), Arc::clone(&shared));
                let outcomes = outcomes.clone();
                handles.push(spawn(format!("outband-worker-{i}"), move || {
                    worker_loop(&engine, &shared, &outcomes);
                }));
            }
            // ends once every worker has ended and dropped its sender
            drop(outcomes);
            let (engine, claimer_shared) = (Arc::clone(&self.engine), Arc::clone(&shared));
            handles.push(spawn("outband-claimer".into(), move || {
                claim_loop(&engine, &claimer_shared);
            }));
            // the completers take turns gathering; their calls overlap
            let recorded = Arc::new(Mutex::new(recorded));
            for i in 0..completers {
                let (engine, shared) = (Arc::clone(&self.engine), Arc::clone(&shared));
                let recorded = Arc::clone(&recorded);
                handles.push(spawn(format!("outband-completer-{i}"), move || {
                    record_loop(&engine, &shared, &recorded);
                }));
            }
            handles
        });
    }
}

fn claim_loop(engine: &Engine, shared: &Shared) {
    let claiming = || engine.claiming.load(Ordering::SeqCst);
    let mut idle = 0;
    loop {
        // wait for a free lease, then reserve every free one for this claim
        let reserved = {
            let free = |pool: &Pool| shared.limit.saturating_sub(pool.leases);
            let mut pool = shared.lock();
            while claiming() && free(&pool) == 0 {
                pool = shared
                    .free
                    .wait_timeout(pool, engine.config.wait_time)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
            }
            // A lease that just came free is usually the first of several:
            // wait a moment for the others, so that one claim serves them all
            // rather than one claim each (a round trip, and on SQL databases
            // a commit, per job).
            let deadline = Instant::now() + GATHER;
            while claiming() && free(&pool) < shared.limit {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pool = shared
                    .free
                    .wait_timeout(pool, left)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
            }
            if !claiming() {
                pool.closed = true;
                drop(pool);
                shared.work.notify_all();
                return;
            }
            let reserved = free(&pool);
            pool.leases += reserved;
            reserved
        };
        match engine.claim_held(reserved) {
            Ok(jobs) if jobs.is_empty() => {
                shared.hand_out(jobs, reserved, 0);
                engine.idle_wait(&mut idle);
            }
            Ok(jobs) => {
                idle = 0;
                shared.hand_out(jobs, reserved, 0);
            }
            Err(error) => {
                shared.hand_out(Vec::new(), reserved, 0);
                log::error!("claiming failed: {error}");
                engine.idle_wait(&mut idle);
            }
        }
    }
}

fn worker_loop(engine: &Engine, shared: &Shared, outcomes: &Sender<Finished>) {
    loop {
        let job = {
            let mut pool = shared.lock();
            loop {
                if let Some(job) = pool.jobs.pop_front() {
                    pool.running += 1;
                    break job;
                }
                // a lease still held may yet bring a job to run
                if pool.closed && pool.leases == 0 {
                    return;
                }
                pool = shared
                    .work
                    .wait(pool)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if !engine.begin(&job) {
            shared.give_up();
            continue;
        }
        // The completer records the outcomes of several workers in one call,
        // which also claims the jobs they run next; this thread goes on with
        // the next job already claimed, if any. The leases it and the
        // completer count bound the jobs a crash makes run again. Where a
        // call costs nothing (claims are free), the thread records its own
        // outcome and claims for itself, sparing two wake-ups.
        let finished = engine.execute(job);
        if engine.self_claims {
            engine.record_many(vec![finished]);
            let reserved = {
                let mut pool = shared.lock();
                pool.running -= 1;
                // its own lease is still counted: hand_out gives it up, as
                // that of an outcome recorded
                pool.recording += 1;
                let reserved = usize::from(
                    engine.claiming.load(Ordering::SeqCst) && pool.leases <= shared.limit,
                );
                pool.leases += reserved;
                reserved
            };
            let claimed = if reserved == 0 {
                Vec::new()
            } else {
                engine.claim_held(1).unwrap_or_else(|error| {
                    log::error!("claiming failed: {error}");
                    Vec::new()
                })
            };
            shared.hand_out(claimed, reserved, 1);
        } else if let Err(unsent) = outcomes.send(finished) {
            engine.record_many(vec![unsent.0]);
            shared.give_up();
        }
    }
}

/// How long a stop whose grace period is over waits for the claims in
/// flight to bring their jobs, to release them: one call to the backend.
const CLAIM_LANDING: Duration = Duration::from_secs(2);

/// The most outcomes recorded in one call to the backend.
const RECORD_BATCH: usize = 256;

/// How long the claimer waits for more leases to come free, and the
/// completer for more outcomes, before a call that serves fewer than all of
/// them: short beside a round trip to a database under load, long beside the
/// time the other workers of a batch take to finish short jobs.
const GATHER: Duration = Duration::from_micros(500);

/// Records outcomes as workers hand them over. The first waits up to
/// [`GATHER`] for the outcomes of the other jobs held (running, or claimed
/// and waiting for a worker), up to the processor's `gather` size, and
/// whatever else arrived goes in the same call, which also claims as many
/// jobs as the recorded outcomes free leases, up to the processor's limit,
/// while the processor is claiming.
///
/// The completers (`ProcessorConfig::completers`) take turns: one gathers
/// while the others' calls are in flight, so the backend works on one batch
/// while the workers run the jobs another brought. With `gather` the
/// limit's share per completer, a batch is ready while the other is
/// recorded. (An earlier try let each completer gather up to the whole
/// limit: the first took every outcome, the second had nothing to gather,
/// and the calls did not overlap.)
fn record_loop(engine: &Engine, shared: &Shared, recorded: &Mutex<Receiver<Finished>>) {
    // the outcomes that may still come soon: those of started and waiting jobs
    let pending = || {
        let pool = shared.lock();
        pool.running + pool.jobs.len()
    };
    loop {
        let recorded = recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(first) = recorded.recv() else { return };
        let mut batch = vec![first];
        let deadline = Instant::now() + GATHER;
        while batch.len() < pending().min(shared.gather) {
            let left = deadline.saturating_duration_since(Instant::now());
            match recorded.recv_timeout(left) {
                Ok(finished) => batch.push(finished),
                Err(_) => break,
            }
        }
        batch.extend(
            recorded
                .try_iter()
                .take(shared.gather.saturating_sub(batch.len())),
        );
        let recorded_count = batch.len();
        let reserved = {
            let mut pool = shared.lock();
            // these outcomes are being recorded: no longer to wait for
            pool.running -= recorded_count;
            pool.recording += recorded_count;
            let reserved = if engine.claiming.load(Ordering::SeqCst) {
                // the leases of the outcomes being recorded are given up by
                // the calls recording them
                (shared.limit + pool.recording).saturating_sub(pool.leases)
            } else {
                0
            };
            pool.leases += reserved;
            reserved
        };
        // the next completer's turn, once this batch no longer counts as
        // outcomes to wait for
        drop(recorded);
        let claimed = engine.record_and_claim(batch, reserved);
        shared.hand_out(claimed, reserved, recorded_count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=6).map(|a| policy.delay(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(
            policy.delay(u32::MAX),
            Duration::from_secs(10),
            "no overflow"
        );
        assert_eq!(RetryPolicy::immediate().delay(3), Duration::ZERO);
    }

    #[test]
    fn the_idle_wait_grows_by_its_factor_up_to_its_cap() {
        let config = ProcessorConfig::default()
            .wait_time(Duration::from_millis(100))
            .wait_backoff(2.0, Duration::from_millis(500));
        let waits: Vec<u128> = (0..6)
            .map(|i| config.idle_wait_time(i).as_millis())
            .collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500, 500]);
        let steady = ProcessorConfig::default();
        assert_eq!(
            steady.idle_wait_time(50),
            Duration::from_secs(1),
            "factor 1 keeps wait_time"
        );
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_varies() {
        let policy = RetryPolicy {
            base: Duration::from_secs(8),
            ..RetryPolicy::default()
        };
        let delays: Vec<Duration> = (0..200).map(|_| policy.delay(1)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(6) && *d <= Duration::from_secs(10))
        );
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jitter spreads retries"
        );
    }
}
