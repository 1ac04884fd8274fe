//! The multi mode: a claimer, `max_threads` workers and `completers`
//! threads that complete jobs and claim the next jobs in the same call,
//! sharing a pool of claimed jobs and a [`LeaseBudget`].

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::execute::Finished;
use super::lease_budget::LeaseBudget;
use super::pace::Pace;
use super::threads::spawn;
use super::{Mode, Prefetch, Processor, ProcessorConfig};
use crate::{BaseQueue, Claimed, Error, Registry};

/// Runs up to `max_threads` jobs at once, claiming only for free threads
/// (seed: lovely.remotetask's `MultiProcessor`).
///
/// It holds at most `max_threads + prefetch + concurrency` leases
/// (`prefetch` the most it claims ahead, [`Prefetch::max`], 32 by default;
/// `concurrency` counted only when a queue it serves has an async command,
/// else 0): a lease is free once its job's outcome is completed. This is
/// the crash bound: a consumer killed with its leases held makes at most
/// that many jobs run again.
///
/// **Async jobs** run on the processor's tokio runtime, not on its threads:
/// the jobs a claim brings go to a free thread, or, for async commands, to
/// a task that waits for one of the `concurrency` slots and runs the
/// future there. Their outcomes are completed by the same calls as the
/// threads' (which claim the next jobs), so 10,000 jobs waiting on I/O take
/// 10,000 slots and no thread. The call that completes the jobs that
/// finished together also claims as many next jobs as it frees leases
/// ([`BaseQueue::complete_and_claim`]): under load, each batch of jobs costs
/// one round trip (one transaction on SQL databases).
/// Dropped outside a tokio runtime, the processor waits up to 5 s for its
/// runtime's threads, those of `spawn_blocking` calls included, to end.
///
/// **Prefetch.** It also claims jobs ahead of its threads, as Celery's
/// workers prefetch: a thread that finishes takes its next job at once,
/// while its outcome is completed, and the calls serve up to `max_threads +
/// prefetch` jobs between them. That is what short jobs need to go faster
/// than one round trip per `max_threads` jobs. By default the prefetch is
/// [`Prefetch::Adaptive`]: it follows how long jobs and calls take, holding
/// ahead what the threads and async slots finish during one call (so that
/// a slot freed by a short async job finds its next job already claimed, as
/// a thread does), up to 32 for short jobs
/// and none for jobs longer than a call, so that a consumer busy with slow
/// jobs does not hold jobs another could run. [`Prefetch::Fixed`]
/// (`ProcessorConfig::prefetch(n)`, `--prefetch n` on the daemon) holds `n`
/// ahead whatever the jobs, and `prefetch(0)` claims only for a free
/// thread. Jobs claimed ahead are heartbeated like running ones, so they
/// keep their leases however long they wait; a stop lets them run, or, once
/// the grace period ends, releases them back to the queue unrun with the
/// running ones.
///
/// **Completers.** Up to [`ProcessorConfig::completers`] such calls are in
/// flight at once, each completing up to its share of the leases: while the
/// backend completes one batch and claims its next jobs, the workers run the
/// jobs the other call brought. By default the backend chooses
/// ([`Capabilities::default_completers`](crate::Capabilities::default_completers)).
///
/// It is a [`Processor`] in the multi mode, and dereferences to one: its
/// steps, its loop and its stop are the [`Processor`]'s.
///
/// ```
/// use outband::{MemoryQueue, MultiProcessor, ProcessorConfig};
/// use std::sync::Arc;
///
/// let processor = MultiProcessor::new(Arc::new(MemoryQueue::new()), ProcessorConfig::default())?;
/// assert_eq!(processor.max_threads(), 5);
/// # Ok::<(), outband::Error>(())
/// ```
pub struct MultiProcessor(Processor);

impl std::fmt::Debug for MultiProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl MultiProcessor {
    /// A processor over `backend` with `config.max_threads` threads (at least 1).
    /// Fails if the command registry is invalid or the configuration is.
    pub fn new(backend: Arc<dyn BaseQueue>, config: ProcessorConfig) -> Result<Self, Error> {
        Self::with_registry(backend, config, Registry::global()?)
    }

    /// A processor that runs the commands of `registry` instead of those
    /// linked into the program: outband-bench's, which are not registered.
    /// Not public API: it may change in any release.
    #[doc(hidden)]
    pub fn with_registry(
        backend: Arc<dyn BaseQueue>,
        config: ProcessorConfig,
        registry: &'static Registry,
    ) -> Result<Self, Error> {
        if config.max_threads == 0 {
            return Err(Error::Config("max_threads must be at least 1".into()));
        }
        if config.completers == Some(0) {
            return Err(Error::Config("completers must be at least 1".into()));
        }
        Processor::with_registry(backend, config, registry, Mode::Multi).map(Self)
    }

    /// The most jobs it runs at once.
    pub fn max_threads(&self) -> usize {
        self.0.engine.config.max_threads
    }
}

impl Deref for MultiProcessor {
    type Target = Processor;

    fn deref(&self) -> &Processor {
        &self.0
    }
}

impl From<MultiProcessor> for Processor {
    fn from(processor: MultiProcessor) -> Self {
        processor.0
    }
}

/// The most outcomes completed in one call to the backend.
const COMPLETE_BATCH: usize = 256;

/// How long the claimer waits for more leases to come free, and the
/// completer for more outcomes, before a call that serves fewer than all of
/// them: short beside a round trip to a database under load, long beside the
/// time the other workers of a batch take to finish short jobs.
const GATHER: Duration = Duration::from_micros(500);

/// The jobs and leases of a started multi processor, shared by its claimer,
/// its completers and its workers.
struct Pool {
    /// Claimed jobs that no worker has started yet.
    jobs: VecDeque<Claimed>,
    budget: LeaseBudget,
    /// The processor stopped claiming: workers end once no lease is left.
    closed: bool,
}

struct Shared {
    pool: Mutex<Pool>,
    /// Where async jobs send their outcomes to the completers: each task
    /// takes a clone. The last worker to end drops it, so that the
    /// completers end once every task has too.
    async_outcomes: Mutex<Option<Sender<Finished>>>,
    /// Signals workers that a job was handed over, or a lease given up.
    work: Condvar,
    /// Signals the claimer that a lease was given up.
    free: Condvar,
    /// The most outcomes a completer waits for before it calls the backend:
    /// its share of the lease limit.
    gather: usize,
    /// How long jobs and calls take, which steer an adaptive prefetch.
    pace: Pace,
    threads: usize,
    /// The async slots: `concurrency`, or 0 when no queue served has an
    /// async command. With the threads, the leases held with nothing
    /// claimed ahead.
    slots: usize,
    /// The most jobs an adaptive prefetch claims ahead; `None` with a fixed
    /// one, whose target is the limit.
    adaptive: Option<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the leases claims fill up to: with an adaptive prefetch, the
    /// threads and async slots and the jobs the pace calls for ahead.
    fn retarget(&self, budget: &mut LeaseBudget) {
        if let Some(max) = self.adaptive {
            let ahead = self.pace.ahead(self.threads, self.slots, max);
            budget.set_target(self.threads.saturating_add(self.slots) + ahead);
        }
    }

    /// Hands the jobs a call brought (held already) to the workers, or to
    /// the async runtime for async jobs, and gives up the `reserved` leases
    /// counted for it and the `completed` ones whose outcomes it completed.
    fn hand_out(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        claimed: Vec<Claimed>,
        reserved: usize,
        completed: usize,
    ) {
        let (async_jobs, sync_jobs): (Vec<_>, Vec<_>) =
            claimed.into_iter().partition(|c| engine.runs_async(&c.job));
        let mut pool = self.lock();
        let freed = pool
            .budget
            .land(sync_jobs.len() + async_jobs.len(), reserved, completed);
        // what a waiting worker waits for: a job, or the end of the loop
        let for_workers = !sync_jobs.is_empty() || (pool.closed && pool.budget.is_empty());
        pool.jobs.extend(sync_jobs);
        drop(pool);
        if for_workers {
            self.work.notify_all();
        }
        if freed {
            self.free.notify_one();
        }
        spawn_async(engine, self, async_jobs);
    }

    /// Gives up the lease of a job a worker took from the pool and that no
    /// completer call completes: the worker completed it itself, or
    /// the job was not run.
    fn give_up(&self) {
        self.lock().budget.give_up();
        self.work.notify_all();
        self.free.notify_one();
    }

    /// Gives up the lease of an async job that never started: a stop
    /// released it while it waited for a slot.
    fn give_up_unstarted(&self) {
        self.lock().budget.give_up_unstarted();
        self.work.notify_all();
        self.free.notify_one();
    }
}

/// Runs claimed async jobs on the async runtime, each once one of the
/// `concurrency` slots is free, and sends their outcomes to the
/// completers. A stop that releases a job drops its task, which gives its
/// lease up in the budget (the stop gave it back to the backend).
fn spawn_async(engine: &Arc<Engine>, shared: &Arc<Shared>, jobs: Vec<Claimed>) {
    /// Gives up the job's lease in the budget unless its outcome was sent:
    /// the completer's call gives it up then.
    struct Slot {
        shared: Arc<Shared>,
        started: bool,
        sent: bool,
    }
    impl Slot {
        fn start(&mut self) {
            self.shared.lock().budget.start();
            self.started = true;
        }
        fn sent(&mut self) {
            self.sent = true;
        }
    }
    impl Drop for Slot {
        fn drop(&mut self) {
            if self.sent {
                return;
            }
            if self.started {
                self.shared.give_up();
            } else {
                self.shared.give_up_unstarted();
            }
        }
    }

    if jobs.is_empty() {
        return;
    }
    let outcomes = shared
        .async_outcomes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    #[cfg(feature = "runtime")]
    if let Err(error) = engine.async_jobs.runtime() {
        // no runtime to run them on: each attempt fails, as a panic would
        for job in jobs {
            shared.lock().budget.start();
            let finished = engine.unrunnable(job, error.clone());
            let sent = outcomes
                .as_ref()
                .is_some_and(|outcomes| outcomes.send(finished).is_ok());
            if !sent {
                shared.give_up();
            }
        }
        return;
    }
    // each job's slot, from now on: a job dropped before its task runs
    // gives its lease up
    let jobs: Vec<(Claimed, Slot)> = jobs
        .into_iter()
        .map(|job| {
            let slot = Slot {
                shared: Arc::clone(shared),
                started: false,
                sent: false,
            };
            (job, slot)
        })
        .collect();
    let (task_engine, slots) = (Arc::clone(engine), Arc::clone(&engine.async_jobs.slots));
    let task = move |(job, mut slot): (Claimed, Slot)| {
        let (engine, slots, outcomes) = (
            Arc::clone(&task_engine),
            Arc::clone(&slots),
            outcomes.clone(),
        );
        async move {
            // the semaphore is never closed
            let Ok(_permit) = slots.acquire_owned().await else {
                return;
            };
            slot.start();
            if !engine.begin(&job) {
                return;
            }
            let started = Instant::now();
            let finished = engine.execute_async(job).await;
            slot.shared.pace.async_job(started.elapsed());
            match outcomes {
                Some(outcomes) => match outcomes.send(finished) {
                    Ok(()) => slot.sent(),
                    Err(unsent) => log::error!(
                        "job {}: no completer took its outcome; its lease will expire",
                        unsent.0.job.id
                    ),
                },
                None => log::error!(
                    "job {}: the processor had ended; its lease will expire",
                    finished.job.id
                ),
            }
        }
    };
    #[cfg(feature = "runtime")]
    if let Err(error) = engine.async_jobs.spawn_each(jobs, task) {
        log::error!("{error}");
    }
    #[cfg(not(feature = "runtime"))]
    drop((jobs, task));
}

/// Starts the multi loop's threads: `max_threads` workers run the jobs,
/// `completers` threads complete their jobs and claim their next jobs in
/// the same call, taking turns, and a claimer claims when leases are free
/// and no completer has anything to complete.
pub(super) fn spawn_loop(engine: &Arc<Engine>) -> Vec<JoinHandle<()>> {
    let config = &engine.config;
    let limit = engine.lease_limit();
    let completers = config
        .completers
        .unwrap_or_else(|| engine.backend.capabilities().default_completers())
        .max(1);
    let (outcomes, completed) = mpsc::channel();
    let shared = Arc::new(Shared {
        async_outcomes: Mutex::new(Some(outcomes.clone())),
        pool: Mutex::new(Pool {
            jobs: VecDeque::new(),
            budget: LeaseBudget::new(limit),
            closed: false,
        }),
        work: Condvar::new(),
        free: Condvar::new(),
        gather: limit.div_ceil(completers).clamp(1, COMPLETE_BATCH),
        pace: Pace::default(),
        threads: config.max_threads,
        slots: engine.async_slots,
        adaptive: match config.prefetch {
            Prefetch::Adaptive { max } => Some(max),
            Prefetch::Fixed(_) => None,
        },
    });
    let mut handles = Vec::new();
    for i in 0..config.max_threads {
        let (engine, shared) = (Arc::clone(engine), Arc::clone(&shared));
        let outcomes = outcomes.clone();
        handles.push(spawn(format!("outband-worker-{i}"), move || {
            worker_loop(&engine, &shared, &outcomes);
        }));
    }
    // ends once every worker has ended and dropped its sender
    drop(outcomes);
    let (claimer_engine, claimer_shared) = (Arc::clone(engine), Arc::clone(&shared));
    handles.push(spawn("outband-claimer".into(), move || {
        claim_loop(&claimer_engine, &claimer_shared);
    }));
    // the completers take turns gathering; their calls overlap
    let completed = Arc::new(Mutex::new(completed));
    for i in 0..completers {
        let (engine, shared) = (Arc::clone(engine), Arc::clone(&shared));
        let completed = Arc::clone(&completed);
        handles.push(spawn(format!("outband-completer-{i}"), move || {
            completer_loop(&engine, &shared, &completed);
        }));
    }
    handles
}

fn claim_loop(engine: &Arc<Engine>, shared: &Arc<Shared>) {
    let claiming = || engine.stop.claiming();
    let mut idle = 0;
    loop {
        // wait for a free lease, then reserve every free one for this claim
        let reserved = {
            let mut pool = shared.lock();
            shared.retarget(&mut pool.budget);
            while claiming() && pool.budget.free() == 0 {
                pool = shared
                    .free
                    .wait_timeout(pool, engine.config.wait_time)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
                shared.retarget(&mut pool.budget);
            }
            // A lease that just came free is usually the first of several:
            // wait a moment for the others, so that one claim serves them all
            // rather than one claim each (a round trip, and on SQL databases
            // a commit, per job).
            let deadline = Instant::now() + GATHER;
            while claiming() && pool.budget.free() < pool.budget.target() {
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
            pool.budget.reserve_free()
        };
        let started = Instant::now();
        let claimed = engine.claim_held(reserved);
        shared.pace.call(started.elapsed());
        match claimed {
            Ok(jobs) if jobs.is_empty() => {
                shared.hand_out(engine, jobs, reserved, 0);
                engine.idle_wait(&mut idle);
            }
            Ok(jobs) => {
                idle = 0;
                shared.hand_out(engine, jobs, reserved, 0);
            }
            Err(error) => {
                shared.hand_out(engine, Vec::new(), reserved, 0);
                log::error!("claiming failed: {error}");
                engine.idle_wait(&mut idle);
            }
        }
    }
}

fn worker_loop(engine: &Arc<Engine>, shared: &Arc<Shared>, outcomes: &Sender<Finished>) {
    loop {
        let job = {
            let mut pool = shared.lock();
            loop {
                if let Some(job) = pool.jobs.pop_front() {
                    pool.budget.start();
                    break job;
                }
                // a lease still held may yet bring a job to run
                if pool.closed && pool.budget.is_empty() {
                    drop(pool);
                    // no async job is left to send an outcome
                    shared
                        .async_outcomes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
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
        // The completer completes the jobs of several workers in one call,
        // which also claims the jobs they run next; this thread goes on with
        // the next job already claimed, if any. The leases it and the
        // completer count bound the jobs a crash makes run again. Where a
        // call costs nothing (claims are free), the thread completes its own
        // outcome and claims for itself, sparing two wake-ups.
        let started = Instant::now();
        let finished = engine.execute(job);
        shared.pace.job(started.elapsed());
        if engine.self_claims {
            let started = Instant::now();
            engine.complete_many(vec![finished]);
            let reserved = {
                let mut pool = shared.lock();
                shared.retarget(&mut pool.budget);
                pool.budget.complete_own(engine.stop.claiming())
            };
            let claimed = if reserved == 0 {
                Vec::new()
            } else {
                engine.claim_held(1).unwrap_or_else(|error| {
                    log::error!("claiming failed: {error}");
                    Vec::new()
                })
            };
            shared.pace.call(started.elapsed());
            shared.hand_out(engine, claimed, reserved, 1);
        } else if let Err(unsent) = outcomes.send(finished) {
            engine.complete_many(vec![unsent.0]);
            shared.give_up();
        }
    }
}

/// Records outcomes as workers hand them over. The first waits up to
/// [`GATHER`] for the outcomes of the other jobs held (running, or claimed
/// and waiting for a worker), up to the processor's `gather` size, and
/// whatever else arrived goes in the same call, which also claims as many
/// jobs as the completed outcomes free leases, up to the processor's limit,
/// while the processor is claiming.
///
/// The completers (`ProcessorConfig::completers`) take turns: one gathers
/// while the others' calls are in flight, so the backend works on one batch
/// while the workers run the jobs another brought. With `gather` the
/// limit's share per completer, a batch is ready while the other is
/// completed; were each to gather up to the whole limit, the first would
/// take every outcome and the calls would not overlap.
fn completer_loop(
    engine: &Arc<Engine>,
    shared: &Arc<Shared>,
    completed: &Mutex<Receiver<Finished>>,
) {
    // the outcomes that may still come soon: those of started and waiting jobs
    let pending = || {
        let pool = shared.lock();
        pool.budget.running() + pool.jobs.len()
    };
    loop {
        let completed = completed.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(first) = completed.recv() else { return };
        let mut batch = vec![first];
        let deadline = Instant::now() + GATHER;
        while batch.len() < pending().min(shared.gather) {
            let left = deadline.saturating_duration_since(Instant::now());
            match completed.recv_timeout(left) {
                Ok(finished) => batch.push(finished),
                Err(_) => break,
            }
        }
        batch.extend(
            completed
                .try_iter()
                .take(shared.gather.saturating_sub(batch.len())),
        );
        let completed_count = batch.len();
        // these outcomes are being completed, no longer to wait for; the
        // calls completing them give up their leases
        let reserved = {
            let mut pool = shared.lock();
            shared.retarget(&mut pool.budget);
            pool.budget
                .complete(completed_count, engine.stop.claiming())
        };
        // the next completer's turn, once this batch no longer counts as
        // outcomes to wait for
        drop(completed);
        let started = Instant::now();
        let claimed = engine.complete_and_claim(batch, reserved);
        shared.pace.call(started.elapsed());
        shared.hand_out(engine, claimed, reserved, completed_count);
    }
}
