//! The lease table: every job this processor holds a lease on, from its
//! claim until it is completed, with how far it got. The heartbeat
//! extends the leases found here, and a stop releases them.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::engine::Engine;
use crate::{Claimed, Completion, Heartbeat, JobContext, JobId, Lease, Outcome};

/// How far a held job got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Claimed, and no worker has started it yet (claimed ahead, or on its
    /// way to a thread).
    Waiting,
    /// A worker runs it.
    Running,
    /// The command has returned; only its completion is still to come.
    Finished,
}

struct Entry {
    lease: Lease,
    /// When the job was claimed: its lease is due for a heartbeat a third of
    /// the lease later.
    claimed: Instant,
    stage: Stage,
    /// The lease is no longer this processor's: the backend took the job
    /// back, or a stop released it. Whatever stage the job is in, its
    /// lease is not extended, and a waiting job is not started.
    lost: bool,
    /// The running command's context, cancelled when the lease is lost.
    context: Option<JobContext>,
    /// The attempt's time limit, if it has one.
    limit: Option<Limit>,
    /// The job was cancelled while held: its context says so once it runs.
    cancel_requested: bool,
}

/// What the heartbeat needs to fail an attempt that overran its timeout.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub(super) deadline: Instant,
    pub(super) timeout: Duration,
    pub(super) attempt: u32,
    pub(super) max_attempts: u32,
    pub(super) backoff: crate::Backoff,
}

impl Entry {
    fn new(lease: Lease, claimed: Instant, stage: Stage) -> Self {
        Self {
            lease,
            claimed,
            stage,
            lost: false,
            context: None,
            limit: None,
            cancel_requested: false,
        }
    }
}

/// The jobs held, by id.
#[derive(Default)]
pub(super) struct InFlight(Mutex<HashMap<JobId, Entry>>);

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds the jobs of a claim, waiting for a worker. `releasing` is read
    /// under the table's lock, which a stop takes after it sets the flag:
    /// either the stop finds these jobs here, or they come marked lost.
    /// Returns what `releasing` said.
    fn hold(&self, claimed: &[Claimed], releasing: impl FnOnce() -> bool) -> bool {
        let now = Instant::now();
        let mut table = self.lock();
        let releasing = releasing();
        for c in claimed {
            let mut entry = Entry::new(c.lease.clone(), now, Stage::Waiting);
            entry.lost = releasing;
            table.insert(c.job.id, entry);
        }
        releasing
    }

    /// Marks a held job as started by a worker; a job not held yet is held
    /// now. `false` (and the job dropped from the table) when its lease was
    /// lost while it waited.
    fn begin(&self, claimed: &Claimed) -> bool {
        let mut table = self.lock();
        let entry = table
            .entry(claimed.job.id)
            .or_insert_with(|| Entry::new(claimed.lease.clone(), Instant::now(), Stage::Waiting));
        if entry.lost {
            table.remove(&claimed.job.id);
            return false;
        }
        entry.stage = Stage::Running;
        true
    }

    /// Marks a job as running with `context`, holding it if it was not (a
    /// job run step by step, without a loop). A lease lost before it comes
    /// here cancels the context at once.
    pub(super) fn run(&self, claimed: &Claimed, context: &JobContext, limit: Option<Limit>) {
        let mut table = self.lock();
        let entry = table
            .entry(claimed.job.id)
            .and_modify(|entry| {
                if entry.stage == Stage::Waiting {
                    entry.stage = Stage::Running;
                }
            })
            .or_insert_with(|| Entry::new(claimed.lease.clone(), Instant::now(), Stage::Running));
        if entry.lost {
            context.cancel();
        }
        if entry.cancel_requested {
            context.request_cancel();
        }
        entry.context = Some(context.clone());
        entry.limit = limit;
    }

    /// Cancels the context of every running job past its deadline, and
    /// gives up those past their deadline plus `grace`: marked lost (no
    /// heartbeat, no release), and returned with their leases, to be
    /// recorded as failed while their command goes on running.
    fn overdue(&self, grace: Duration) -> Vec<(Lease, Limit)> {
        let now = Instant::now();
        let mut given_up = Vec::new();
        for entry in self.lock().values_mut() {
            let Some(limit) = entry.limit else { continue };
            if entry.stage != Stage::Running || entry.lost || now < limit.deadline {
                continue;
            }
            if let Some(context) = &entry.context {
                context.cancel();
            }
            if now >= limit.deadline + grace {
                entry.lost = true;
                given_up.push((entry.lease.clone(), limit));
            }
        }
        given_up
    }

    /// The lease of a held job, unless it was lost.
    pub(super) fn lease(&self, job: JobId) -> Option<Lease> {
        self.lock()
            .get(&job)
            .filter(|entry| !entry.lost)
            .map(|entry| entry.lease.clone())
    }

    /// Marks a job's command as returned.
    pub(super) fn finish(&self, job: JobId) {
        if let Some(entry) = self.lock().get_mut(&job) {
            entry.stage = Stage::Finished;
            entry.context = None;
        }
    }

    /// Drops jobs from the table: they are completed, or given up.
    pub(super) fn remove(&self, jobs: impl IntoIterator<Item = JobId>) {
        let mut table = self.lock();
        for job in jobs {
            table.remove(&job);
        }
    }

    /// The leases, not lost, of the jobs running and of those claimed at
    /// least `due` ago: a running job's heartbeat also tells it whether it
    /// was cancelled.
    fn due(&self, due: Duration) -> Vec<Lease> {
        self.lock()
            .values()
            .filter(|entry| {
                !entry.lost && (entry.stage == Stage::Running || entry.claimed.elapsed() >= due)
            })
            .map(|entry| entry.lease.clone())
            .collect()
    }

    /// Marks a held job as cancelled, and tells its command if it runs.
    fn request_cancel(&self, job: JobId) {
        if let Some(entry) = self.lock().get_mut(&job) {
            entry.cancel_requested = true;
            if let Some(context) = &entry.context {
                context.request_cancel();
            }
        }
    }

    fn lose(&self, job: JobId) {
        if let Some(entry) = self.lock().get_mut(&job) {
            entry.lost = true;
            if let Some(context) = &entry.context {
                context.cancel();
            }
        }
    }

    /// Marks lost, and returns, the leases of the jobs whose command has not
    /// returned: waiting or running.
    fn lose_unfinished(&self) -> Vec<Lease> {
        self.lock()
            .values_mut()
            // a lost lease is another's now, or was released already
            .filter(|entry| entry.stage != Stage::Finished && !entry.lost)
            .map(|entry| {
                entry.lost = true;
                if let Some(context) = &entry.context {
                    context.cancel();
                }
                entry.lease.clone()
            })
            .collect()
    }

    /// Jobs started and not yet completed.
    fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|entry| entry.stage != Stage::Waiting)
            .count()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Engine {
    /// Keeps claimed jobs that no worker has started yet under heartbeat, so
    /// that a job claimed ahead keeps its lease while it waits for a thread.
    /// Once a stop has released the jobs held, the jobs of a claim that was
    /// then in flight are released at once instead, and marked so that no
    /// thread starts them.
    pub(super) fn hold(&self, claimed: &[Claimed]) {
        if claimed.is_empty() {
            return;
        }
        if self.in_flight.hold(claimed, || self.stop.releasing()) {
            self.release(claimed.iter().map(|c| c.lease.clone()).collect());
        }
    }

    /// Marks a job held by [`hold`](Self::hold) as started. `false` when its
    /// lease was lost or released while it waited: then it must not run here.
    pub(super) fn begin(&self, claimed: &Claimed) -> bool {
        if !self.in_flight.begin(claimed) {
            log::warn!(
                "job {} lost its lease before it started; it was not run here",
                claimed.job.id
            );
            return false;
        }
        true
    }

    /// Extends the lease of every job that has run for a third of its lease.
    pub(super) fn heartbeat_once(&self) {
        for lease in self.in_flight.due(self.config.lease / 3) {
            self.heartbeat_of(&lease);
        }
    }

    /// Enforces the timeouts of the running jobs: see [`InFlight::overdue`].
    /// A sync command that has not returned within the grace after its
    /// deadline keeps its thread, which the processor cannot stop, so the
    /// thread cap holds; its attempt is recorded as failed now, retried or
    /// dead by the usual rules, and its outcome, when it comes, discarded.
    pub(super) fn enforce_timeouts(&self) {
        for (lease, limit) in self.in_flight.overdue(self.config.timeout_grace) {
            let error = timed_out(limit.timeout);
            let outcome = self.failed_attempt(
                limit.attempt,
                limit.max_attempts,
                limit.backoff,
                error.clone(),
            );
            match self.backend.complete(&lease, outcome) {
                Ok(Completion::Applied) => log::warn!(
                    "job {} {error} and did not return within the grace of {:?}: \
                     its attempt is recorded as failed, and its thread stays busy until it returns",
                    lease.job,
                    self.config.timeout_grace
                ),
                Ok(Completion::LeaseLost) => {}
                Err(error) => {
                    log::error!("recording the timeout of job {} failed: {error}", lease.job);
                }
            }
        }
    }

    /// Extends one lease, and acts on what the backend says of its job.
    pub(super) fn heartbeat_of(&self, lease: &Lease) {
        match self.backend.heartbeat(lease, self.config.lease) {
            Ok(Heartbeat::LeaseLost) => self.lease_lost(lease.job),
            Ok(Heartbeat::CancelRequested(_)) => {
                log::info!("job {} was cancelled while it runs; stopping it", lease.job);
                self.in_flight.request_cancel(lease.job);
            }
            Ok(_) => {}
            Err(error) => log::warn!("heartbeat of job {} failed: {error}", lease.job),
        }
    }

    /// The backend pushed a cancel request for `job`: if it runs here, a
    /// heartbeat now confirms it, and its answer stops the job.
    pub(super) fn cancel_pushed(&self, job: JobId) {
        if let Some(lease) = self.in_flight.lease(job) {
            self.heartbeat_of(&lease);
        }
    }

    /// A job held here lost its lease: it is not extended any more, its
    /// context is cancelled, and its outcome will be discarded.
    pub(super) fn lease_lost(&self, job: JobId) {
        log::warn!("job {job} lost its lease while running; its outcome will be discarded");
        self.in_flight.lose(job);
    }

    /// Gives every job still running back to the queue, unrun.
    /// Jobs claimed ahead that no worker has started are released too, and
    /// marked so that no worker starts them afterwards; so are those of
    /// claims still in flight, as they come (see [`hold`](Self::hold)).
    pub(super) fn release_in_flight(&self) {
        self.stop.start_releasing();
        let leases = self.in_flight.lose_unfinished();
        self.release(leases);
        self.async_jobs.release();
    }

    /// Releases `leases` back to the queue, counted in the stop's report.
    fn release(&self, leases: Vec<Lease>) {
        for lease in leases {
            match self.backend.complete(&lease, Outcome::Release) {
                Ok(Completion::Applied) => {
                    log::info!("job {} released back to the queue", lease.job);
                    self.stop.count_released();
                }
                Ok(Completion::LeaseLost) => {}
                Err(error) => log::error!("releasing job {} failed: {error}", lease.job),
            }
        }
    }

    /// Jobs started and not yet completed.
    pub(super) fn running(&self) -> usize {
        self.in_flight.running()
    }

    /// Leases held: running, to be completed, and claimed ahead; and the
    /// most jobs the claims in flight may bring.
    pub(super) fn held(&self) -> usize {
        self.in_flight.len() + self.stop.claims_in_flight()
    }
}

/// The error of an attempt that ran out of time.
pub(super) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {timeout:?}")
}
