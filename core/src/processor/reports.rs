//! What running commands ask of the heartbeat through their
//! [`JobContext`](crate::JobContext): progress to store and leases to
//! extend now. A command never waits on the backend for them: it leaves
//! them here, and the heartbeat thread sends them, progress at its next
//! tick (a second at most) and a lease at once. A job's last report is
//! sent with its completion instead, so that it is stored before the job
//! is done.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::engine::Engine;
use crate::context::Reports;
use crate::{Completion, JobId, Lease, Progress};

/// The reports waiting for the heartbeat thread, and its stop signal.
#[derive(Default)]
pub(super) struct Requests {
    waiting: Mutex<Waiting>,
    wake: Condvar,
    /// Whether a refused report was logged: the backend may keep no
    /// progress at all, and one line says so.
    refusal_logged: AtomicBool,
    /// Whether anything waits: set and cleared under the lock, read
    /// without it, so that a job that reported nothing takes no lock when
    /// it ends.
    any: AtomicBool,
}

#[derive(Default)]
struct Waiting {
    progress: HashMap<JobId, Progress>,
    beats: HashSet<JobId>,
    stopped: bool,
}

/// What one wait of the heartbeat thread gave it.
pub(super) struct Drained {
    pub(super) progress: Vec<(JobId, Progress)>,
    pub(super) beats: Vec<JobId>,
    pub(super) stopped: bool,
}

impl Requests {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The heartbeat thread starts: nothing waits, and it is not stopped.
    pub(super) fn reset(&self) {
        *self.lock() = Waiting::default();
    }

    /// Stops the heartbeat thread.
    pub(super) fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_all();
    }

    /// Waits up to `tick`, or until a lease is to be extended or the
    /// thread stopped, and takes what waits.
    pub(super) fn wait(&self, tick: Duration) -> Drained {
        let mut waiting = self.lock();
        if waiting.beats.is_empty() && !waiting.stopped {
            waiting = self
                .wake
                .wait_timeout(waiting, tick)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
        self.any.store(false, Ordering::SeqCst);
        Drained {
            progress: waiting.progress.drain().collect(),
            beats: waiting.beats.drain().collect(),
            stopped: waiting.stopped,
        }
    }

    /// Takes what waits without waiting: the leases to extend now, and each
    /// job's latest progress when `progress` is set (else it stays for a
    /// later call).
    pub(super) fn take_now(&self, progress: bool) -> Drained {
        let mut waiting = self.lock();
        let progress = if progress {
            waiting.progress.drain().collect()
        } else {
            Vec::new()
        };
        self.any
            .store(!waiting.progress.is_empty(), Ordering::SeqCst);
        Drained {
            progress,
            beats: waiting.beats.drain().collect(),
            stopped: waiting.stopped,
        }
    }

    /// Takes job `id`'s report not sent yet, and forgets its requests: its
    /// command has returned.
    pub(super) fn take(&self, id: JobId) -> Option<Progress> {
        // what this job reported was stored under the lock, before it
        // returned: with nothing waiting now, nothing of it does
        if !self.any.load(Ordering::SeqCst) {
            return None;
        }
        let mut waiting = self.lock();
        waiting.beats.remove(&id);
        waiting.progress.remove(&id)
    }
}

impl Reports for Requests {
    fn progress(&self, id: JobId, progress: Progress) {
        let mut waiting = self.lock();
        waiting.progress.insert(id, progress);
        self.any.store(true, Ordering::SeqCst);
    }

    fn heartbeat(&self, id: JobId) {
        let mut waiting = self.lock();
        waiting.beats.insert(id);
        self.any.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }
}

impl Engine {
    /// Sends what the heartbeat thread took: each job's latest progress,
    /// and the leases to extend now.
    pub(super) fn send_reports(&self, progress: Vec<(JobId, Progress)>, beats: Vec<JobId>) {
        for (id, progress) in progress {
            if let Some(lease) = self.in_flight.lease(id) {
                self.send_progress(&lease, &progress);
            }
        }
        for id in beats {
            let Some(lease) = self.in_flight.lease(id) else {
                continue;
            };
            self.heartbeat_of(&lease);
        }
    }

    /// Stores one job's progress under its lease.
    pub(super) fn send_progress(&self, lease: &Lease, progress: &Progress) {
        match self.backend.progress(lease, progress) {
            Ok(Completion::Applied) => {}
            Ok(Completion::LeaseLost) => self.lease_lost(lease.job),
            Err(error) => {
                if !self.requests.refusal_logged.swap(true, Ordering::Relaxed) {
                    log::warn!("progress of job {} not stored: {error}", lease.job);
                }
            }
        }
    }
}
