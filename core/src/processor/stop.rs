//! How a processor stops: first it stops claiming, then it waits for the
//! jobs it holds, and once a grace period is over it releases what is still
//! held back to the queue, the jobs of claims still in flight included.
//!
//! The signals the loops read ([`Stop`]) and the steps a caller takes
//! ([`Processor::stop_claiming`], [`Processor::stop`],
//! [`Processor::stop_within`]) live here together, because the release is
//! only safe in the order they are set and read.

use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Processor;

/// What a stop with a grace period did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// Jobs still held at the end of the grace period (running, or claimed
    /// and not started, including those of a claim then in flight),
    /// released back to the queue with their attempt not counted. When it
    /// is not zero, the processor's threads were left running: a released
    /// job's command goes on until it returns, and its outcome is
    /// discarded. [`stop`](Processor::stop) waits for them; dropping the
    /// processor leaves them to end on their own, and its heartbeat and
    /// consumer registration end with them.
    pub released: usize,
}

/// How long a stop whose grace period is over waits for the claims in
/// flight to bring their jobs, to release them: one call to the backend.
const CLAIM_LANDING: Duration = Duration::from_secs(2);

/// The stop protocol's signals, shared by the loops and the caller.
#[derive(Default)]
pub(super) struct Stop {
    /// The loops claim new jobs.
    claiming: AtomicBool,
    /// The most jobs the loops' claims in flight may still bring: counted
    /// from before each call until its jobs are held, so that a stop never
    /// sees nothing held while the backend has leased jobs to this
    /// processor.
    claims_in_flight: AtomicUsize,
    /// A stop released the jobs held: jobs that claims bring afterwards are
    /// released as they are held, and never started.
    releasing: AtomicBool,
    /// Jobs the stop released back to the queue, those of late claims too.
    released: AtomicUsize,
}

impl Stop {
    /// Resets the signals for a loop that starts.
    pub(super) fn start(&self) {
        self.releasing.store(false, Ordering::SeqCst);
        self.released.store(0, Ordering::SeqCst);
        self.claiming.store(true, Ordering::SeqCst);
    }

    pub(super) fn claiming(&self) -> bool {
        self.claiming.load(Ordering::SeqCst)
    }

    fn stop_claiming(&self) {
        self.claiming.store(false, Ordering::SeqCst);
    }

    /// A claim of up to `max` jobs is on its way to the backend.
    pub(super) fn claim_sent(&self, max: usize) {
        self.claims_in_flight.fetch_add(max, Ordering::SeqCst);
    }

    /// The claim counted by [`claim_sent`](Self::claim_sent) has returned
    /// and its jobs are held.
    pub(super) fn claim_landed(&self, max: usize) {
        self.claims_in_flight.fetch_sub(max, Ordering::SeqCst);
    }

    pub(super) fn claims_in_flight(&self) -> usize {
        self.claims_in_flight.load(Ordering::SeqCst)
    }

    /// From now on, jobs that claims bring are released as they are held.
    pub(super) fn start_releasing(&self) {
        self.releasing.store(true, Ordering::SeqCst);
    }

    pub(super) fn releasing(&self) -> bool {
        self.releasing.load(Ordering::SeqCst)
    }

    /// Counts a job released back to the queue.
    pub(super) fn count_released(&self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }

    fn released(&self) -> usize {
        self.released.load(Ordering::SeqCst)
    }
}

impl Processor {
    /// Stops claiming new jobs; jobs already running go on. The loop keeps
    /// its threads until [`stop`](Self::stop).
    pub fn stop_claiming(&self) {
        self.engine.stop.stop_claiming();
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
        while self.engine.stop.claims_in_flight() > 0 && Instant::now() < landing {
            std::thread::sleep(Duration::from_millis(5));
        }
        let released = self.engine.stop.released();
        if released == 0 {
            self.stop();
        } else if let Some(threads) = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            // the loop's threads still run released jobs; the maintenance
            // ends with the stop
            threads.stop_maintenance();
        }
        StopReport { released }
    }
}

impl Drop for Processor {
    /// A processor dropped once its stop began but before its threads were
    /// joined (after [`stop_claiming`](Processor::stop_claiming), or a
    /// [`stop_within`](Processor::stop_within) that released jobs, see
    /// [`StopReport::released`]) hands those threads to a thread that
    /// joins them as their jobs end, then ends the heartbeat, which holds
    /// the backend and keeps the consumer registered until then. One
    /// dropped while it claims goes on running.
    fn drop(&mut self) {
        if self.engine.stop.claiming() {
            return;
        }
        let threads = self
            .threads
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(threads) = threads {
            super::threads::spawn("outband-stopping".into(), move || threads.join());
        }
    }
}
