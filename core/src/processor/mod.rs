//! The processors that run jobs: [`Processor`], in one of two modes, and the
//! typed [`SimpleProcessor`] and [`MultiProcessor`] that build each mode.
//!
//! One concern per file:
//!
//! | file | concern |
//! |---|---|
//! | `config.rs` | [`ProcessorConfig`], [`Prefetch`] and [`RetryPolicy`] |
//! | `engine.rs` | the state both loops share, and claiming over the queues in turn |
//! | `execute.rs` | running one claimed job: where a job's fate is decided |
//! | `complete.rs` | completing jobs (and claiming the next jobs in the same call) |
//! | `in_flight.rs` | the lease table: the jobs held, heartbeats, releases |
//! | `reports.rs` | what running commands ask of the heartbeat: progress, leases to extend now |
//! | `simple.rs` | the simple loop: one job at a time |
//! | `multi.rs` | the multi loop: claimer, workers and completers |
//! | `runtime.rs` | the async runtime that async jobs run on, and their slots |
//! | `lease_budget.rs` | the multi loop's lease count and its bound |
//! | `pace.rs` | how long jobs and calls take: the adaptive prefetch |
//! | `threads.rs` | the threads of a started processor, the heartbeat's among them |
//! | `stop.rs` | the stop protocol: stop claiming, wait, release |

use std::sync::{Arc, Mutex};

use crate::{BaseQueue, Claimed, Error, Registry};

mod complete;
mod config;
mod engine;
mod execute;
mod in_flight;
mod lease_budget;
mod multi;
mod pace;
mod reports;
mod runtime;
mod simple;
mod stop;
mod threads;

pub use complete::Processed;
pub use config::{Backoff, Prefetch, ProcessorConfig, RetryPolicy};
pub use multi::MultiProcessor;
pub use simple::SimpleProcessor;
pub use stop::StopReport;

use engine::Engine;
use threads::Threads;

/// Claims jobs from a [`BaseQueue`], runs their commands and completes them
/// outcomes: one type for both modes, built by [`Processor::simple`] and
/// [`Processor::multi`], or from a [`SimpleProcessor`] or [`MultiProcessor`]
/// (which dereference to it), so that a program that picks the mode at run
/// time holds one type.
///
/// - The **simple** mode runs one job at a time, in enqueue order. It suits
///   jobs that use a whole machine, and anything that must not overlap.
/// - The **multi** mode runs up to `max_threads` jobs at once (default 5),
///   and up to `concurrency` async jobs (default 100) besides, holding at
///   most `max_threads + prefetch + concurrency` leases (`prefetch` the
///   [`Prefetch::max`], 32 by default): see
///   [`MultiProcessor`].
///
/// **Async commands.** With outband's `runtime` feature, a processor that
/// serves an `async fn` command runs its jobs on a tokio runtime of its own
/// (started the first time one runs; [`ProcessorConfig::async_threads`]
/// worker threads): in the multi mode up to
/// [`ProcessorConfig::concurrency`] at once, apart from the threads, which
/// keep running sync jobs; in the simple mode and step by step, one at a
/// time, the calling thread waiting for it. Without the feature, a
/// processor that would serve an async command refuses to start, saying so.
///
/// Both offer the same steps, which tests and custom loops can call one by
/// one — [`has_jobs_waiting`](Self::has_jobs_waiting),
/// [`claim_next_job`](Self::claim_next_job), [`process`](Self::process),
/// [`process_next`](Self::process_next) — and a background loop,
/// [`start`](Self::start), stopped in two stages by
/// [`stop_claiming`](Self::stop_claiming) and [`stop`](Self::stop) or
/// [`stop_within`](Self::stop_within).
///
/// **Outcomes.** A command (or an async command's future) that returns normally completes the job as `done`,
/// with its return value stored. One that returns `Err`, panics, or names a
/// command this program does not have fails the attempt: the job is retried
/// after a backoff ([`RetryPolicy`]) while attempts are left, then goes to
/// `dead` with the error recorded. Arguments that cannot be decoded can never
/// run, so that job goes to `dead` at once. A panic, in a sync command or
/// inside a future, is caught; the thread lives on.
///
/// **Leases.** While the loop runs, a heartbeat thread extends, every sixth
/// of a lease, the lease of every job that runs and of every job claimed
/// ahead held for a third of its lease, and learns whether a running job
/// was cancelled. If a lease is lost anyway (the
/// backend took the job back), that is logged, and the late completion
/// changes nothing.
///
/// **Maintenance.** A started processor also takes back expired leases
/// (of any consumer: a crashed one's jobs run again) and purges old `done`
/// jobs, every half lease, on a thread of its own: see
/// [`maintenance`](crate::maintenance). Any number of processors may do so
/// on one backend; [`ProcessorConfig::maintenance`] turns it off.
///
/// **Waiting.** With nothing to claim, the loop calls [`BaseQueue::wait`]
/// for up to `wait_time` (default 1 s): backends that can wake it do so as
/// soon as a job is enqueued.
///
/// ```
/// use outband::{MemoryQueue, Processor, ProcessorConfig};
/// use std::sync::Arc;
///
/// let processor = Processor::multi(Arc::new(MemoryQueue::new()), ProcessorConfig::default())?;
/// processor.start();
/// processor.stop();
/// # Ok::<(), outband::Error>(())
/// ```
pub struct Processor {
    engine: Arc<Engine>,
    threads: Mutex<Option<Threads>>,
    mode: Mode,
}

/// Which loop [`Processor::start`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Simple,
    Multi,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.mode {
            Mode::Simple => f
                .debug_struct("SimpleProcessor")
                .field("queues", &self.engine.queues)
                .finish(),
            Mode::Multi => f
                .debug_struct("MultiProcessor")
                .field("queues", &self.engine.queues)
                .field("max_threads", &self.engine.config.max_threads)
                .finish(),
        }
    }
}

impl Processor {
    /// A processor in the simple mode: see [`SimpleProcessor::new`].
    pub fn simple(backend: Arc<dyn BaseQueue>, config: ProcessorConfig) -> Result<Self, Error> {
        SimpleProcessor::new(backend, config).map(Self::from)
    }

    /// A processor in the multi mode: see [`MultiProcessor::new`].
    pub fn multi(backend: Arc<dyn BaseQueue>, config: ProcessorConfig) -> Result<Self, Error> {
        MultiProcessor::new(backend, config).map(Self::from)
    }

    fn with_registry(
        backend: Arc<dyn BaseQueue>,
        config: ProcessorConfig,
        registry: &'static Registry,
        mode: Mode,
    ) -> Result<Self, Error> {
        Ok(Self {
            engine: Arc::new(Engine::new(backend, config, registry)?),
            threads: Mutex::new(None),
            mode,
        })
    }

    /// Whether any of the processor's queues has a job ready to claim.
    pub fn has_jobs_waiting(&self) -> Result<bool, Error> {
        self.engine.has_jobs_waiting()
    }

    /// Claims the next ready job, if any, leasing it to this processor.
    pub fn claim_next_job(&self) -> Result<Option<Claimed>, Error> {
        Ok(self.engine.claim(1)?.pop())
    }

    /// Runs a claimed job here and now and completes it.
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
        self.engine.stop.claiming()
    }

    /// The number of jobs running now.
    pub fn running(&self) -> usize {
        self.engine.running()
    }

    /// The number of jobs whose lease this processor holds: running,
    /// claimed and not yet started by a thread, or finished with their
    /// job not yet completed. A graceful stop waits until it is zero:
    /// [`running`](Self::running) can be zero for a moment while a claim's
    /// jobs are on their way to the threads.
    pub fn held(&self) -> usize {
        self.engine.held()
    }

    /// Starts the background loop of the processor's mode, with a heartbeat
    /// thread, which also keeps this processor in the backend's
    /// [consumer registry](BaseQueue::register_consumer) (see
    /// [`CONSUMER_HEARTBEAT`](crate::CONSUMER_HEARTBEAT)): in the simple mode, one thread that claims and runs one job
    /// at a time; in the multi mode, the threads [`MultiProcessor`]
    /// describes. Unless [`ProcessorConfig::maintenance`] is off, it also
    /// starts the [`Maintenance`](crate::maintenance::Maintenance) of the
    /// backend, which runs until the processor stops. Does nothing if it
    /// already runs.
    pub fn start(&self) {
        // what the consumer registry says this processor runs at once
        let slots = match self.mode {
            Mode::Simple => (1, 0),
            Mode::Multi => (self.engine.config.max_threads, self.engine.async_slots),
        };
        Threads::start(&self.engine, &self.threads, slots, || match self.mode {
            Mode::Simple => simple::spawn_loop(&self.engine),
            Mode::Multi => multi::spawn_loop(&self.engine),
        });
    }
}
