//! Maintenance: what keeps a backend healthy whoever consumes from it —
//! recovery of expired leases and the purge of old `done` jobs
//! ([`Maintenance`]) — and the periodic scheduler ([`Scheduler`]).
//!
//! Each step is one `*_once` call, separate from the loop that repeats it
//! ([`Maintenance::run`], [`Scheduler::run`]), so that a test calls one step
//! on a state it built and looks at the result. Every step is atomic in the
//! backend, job by job ([`BaseQueue::recover_expired`],
//! [`BaseQueue::purge`], [`BaseQueue::claim_tick`]), so any number of
//! consumers may run maintenance on one backend at once: a processor runs
//! [`Maintenance`] by default (see
//! [`ProcessorConfig::maintenance`](crate::ProcessorConfig::maintenance)), so
//! that a program that starts one without the daemon still gets its expired
//! leases back.
//!
//! ```
//! use outband::maintenance::Maintenance;
//! use outband::{BaseQueue, JobState, MemoryQueue, NewJob};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let backend = Arc::new(MemoryQueue::new());
//! let id = backend.enqueue(NewJob::new("app::ping", outband::codec::encode(&())?))?;
//! // a worker claims the job and is never heard of again
//! backend.claim("default", 1, Duration::ZERO)?;
//! let maintenance = Maintenance::new(backend.clone(), Duration::from_secs(30));
//! assert_eq!(maintenance.recover_once()?.requeued, 1);
//! assert_eq!(backend.job(id)?.unwrap().state, JobState::Pending);
//! # Ok::<(), outband::Error>(())
//! ```

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{BaseQueue, Error, Recovered};

mod periodic;

pub use periodic::{Scheduler, Ticks};

/// How long `done` jobs are kept before the purge deletes them, unless set:
/// 7 days, as the daemon's `--retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The shortest period between two maintenance steps.
const MIN_PERIOD: Duration = Duration::from_millis(100);

/// A flag a maintenance loop waits on, set once to ask it to stop: the loop
/// wakes at once rather than at the end of its period.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    wakeup: Condvar,
}

impl Stop {
    /// A flag not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the loops waiting on this flag to stop.
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wakeup.notify_all();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `period`; returns `true`, at once, when asked to stop.
    pub fn sleep(&self, period: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wakeup
            .wait_timeout_while(stopped, period, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}

/// Recovery of expired leases and the purge, on one backend: the manager of
/// a consumer (the persistent queue's manager, River's rescuer, Oban's
/// lifeline).
///
/// [`recover_once`](Self::recover_once) and [`purge_once`](Self::purge_once)
/// are the steps; [`run`](Self::run) repeats both every period until asked to
/// stop, and [`spawn`](Self::spawn) runs that loop on a thread of its own.
#[derive(Clone)]
pub struct Maintenance {
    backend: Arc<dyn BaseQueue>,
    period: Duration,
    retention: Duration,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance")
            .field("period", &self.period)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Maintenance {
    /// Maintenance of `backend` for consumers that lease jobs for `lease`: a
    /// step every half lease (at least every 100 ms), so that a lost lease is
    /// taken back at most half a lease after it expired, and `done` jobs kept
    /// for [`DEFAULT_RETENTION`].
    pub fn new(backend: Arc<dyn BaseQueue>, lease: Duration) -> Self {
        Self {
            backend,
            period: (lease / 2).max(MIN_PERIOD),
            retention: DEFAULT_RETENTION,
        }
    }

    /// Sets how long `done` jobs are kept before the purge deletes them.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The time between two steps of [`run`](Self::run).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// One recovery step: [`BaseQueue::recover_expired`], which returns each
    /// `running` job whose lease expired to `pending`, or to `dead` when its
    /// attempts are spent ([`backend::fate::expired`](crate::backend::fate::expired)).
    /// Logs what it recovered.
    pub fn recover_once(&self) -> Result<Recovered, Error> {
        let recovered = self.backend.recover_expired()?;
        if recovered.requeued + recovered.dead > 0 {
            log::warn!(
                "manager: {} expired leases returned to the queue, {} jobs dead",
                recovered.requeued,
                recovered.dead
            );
        }
        Ok(recovered)
    }

    /// One purge step: [`BaseQueue::purge`] of the `done` jobs that finished
    /// longer than the retention ago. Logs how many it deleted.
    pub fn purge_once(&self) -> Result<u64, Error> {
        let purged = self.backend.purge(self.retention)?;
        if purged > 0 {
            log::info!(
                "manager: purged {purged} done jobs older than {:?}",
                self.retention
            );
        }
        Ok(purged)
    }

    /// Both steps, logging a failure rather than returning it: the loop goes
    /// on, and the next step tries again.
    pub fn run_once(&self) {
        if let Err(error) = self.recover_once() {
            log::error!("manager: recovering expired leases failed: {error}");
        }
        if let Err(error) = self.purge_once() {
            log::error!("manager: purging failed: {error}");
        }
    }

    /// Runs both steps every period until `stop` is set; the first step
    /// comes one period after the start.
    pub fn run(&self, stop: &Stop) {
        while !stop.sleep(self.period) {
            self.run_once();
        }
    }

    /// Runs [`run`](Self::run) on a thread of its own, `outband-manager`,
    /// until [`Running::stop`].
    pub fn spawn(self) -> Running {
        let stop = Arc::new(Stop::new());
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("outband-manager".into())
            .spawn(move || self.run(&signal))
            .expect("spawning a thread");
        Running { stop, thread }
    }
}

/// A maintenance loop running on its own thread, from
/// [`Maintenance::spawn`] or [`Scheduler::spawn`].
#[derive(Debug)]
pub struct Running {
    stop: Arc<Stop>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Asks the loop to stop and waits for its thread: at most the step
    /// under way.
    pub fn stop(self) {
        self.stop.stop();
        if self.thread.join().is_err() {
            log::error!("a maintenance thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobState, MemoryQueue, NewJob, Outcome};

    fn memory() -> Arc<MemoryQueue> {
        Arc::new(MemoryQueue::new())
    }

    fn job(queue: &str) -> NewJob {
        NewJob::new("c", vec![1]).queue(queue)
    }

    #[test]
    fn recover_once_takes_back_an_expired_lease_and_leaves_a_live_one() {
        let backend = memory();
        let lost = backend.enqueue(job("q").max_attempts(2)).unwrap();
        let spent = backend.enqueue(job("q").max_attempts(1)).unwrap();
        let live = backend.enqueue(job("q")).unwrap();
        // the state a worker that died leaves: running, its lease expired
        assert_eq!(backend.claim("q", 2, Duration::ZERO).unwrap().len(), 2);
        backend.claim("q", 1, Duration::from_secs(60)).unwrap();

        let maintenance = Maintenance::new(backend.clone(), Duration::from_secs(60));
        let recovered = maintenance.recover_once().unwrap();
        assert_eq!(
            recovered,
            Recovered {
                requeued: 1,
                dead: 1
            }
        );
        let state = |id| backend.job(id).unwrap().unwrap();
        assert_eq!(state(lost).state, JobState::Pending);
        assert_eq!(
            state(lost).last_error.as_deref(),
            Some("lease expired on attempt 1 of 2")
        );
        assert_eq!(state(spent).state, JobState::Dead);
        assert_eq!(
            state(spent).last_error.as_deref(),
            Some("lease expired on attempt 1 of 1")
        );
        assert_eq!(state(live).state, JobState::Running);
        assert_eq!(maintenance.recover_once().unwrap(), Recovered::default());
    }

    #[test]
    fn purge_once_deletes_done_jobs_past_the_retention_only() {
        let backend = memory();
        let done = backend.enqueue(job("q")).unwrap();
        let dead = backend.enqueue(job("q")).unwrap();
        let claimed = backend.claim("q", 2, Duration::from_secs(60)).unwrap();
        let finish = Outcome::Done {
            result: None,
            duration: Duration::ZERO,
        };
        backend.complete(&claimed[0].lease, finish).unwrap();
        let bury = Outcome::Dead { error: "x".into() };
        backend.complete(&claimed[1].lease, bury).unwrap();

        let lease = Duration::from_secs(60);
        let keeping = Maintenance::new(backend.clone(), lease).retention(Duration::from_secs(3600));
        assert_eq!(keeping.purge_once().unwrap(), 0, "within the retention");
        let purging = Maintenance::new(backend.clone(), lease).retention(Duration::ZERO);
        assert_eq!(purging.purge_once().unwrap(), 1);
        assert_eq!(backend.job(done).unwrap(), None, "purged");
        assert_eq!(backend.job(dead).unwrap().unwrap().state, JobState::Dead);
    }

    #[test]
    fn the_loop_runs_the_steps_every_period_until_stopped() {
        let backend = memory();
        let id = backend.enqueue(job("q")).unwrap();
        backend.claim("q", 1, Duration::ZERO).unwrap();
        let maintenance = Maintenance::new(backend.clone(), Duration::from_millis(200));
        assert_eq!(maintenance.period(), Duration::from_millis(100));
        let running = maintenance.spawn();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while backend.job(id).unwrap().unwrap().state != JobState::Pending {
            assert!(std::time::Instant::now() < deadline, "never recovered");
            std::thread::sleep(Duration::from_millis(10));
        }
        running.stop();
    }

    #[test]
    fn a_stop_wakes_the_sleeper_at_once() {
        let stop = Arc::new(Stop::new());
        let sleeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || stop.sleep(Duration::from_secs(600)))
        };
        stop.stop();
        assert!(sleeper.join().unwrap(), "woken by the stop");
        assert!(stop.is_stopped());
    }
}
