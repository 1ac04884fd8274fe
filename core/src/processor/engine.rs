//! The state both loops share: the backend, the commands, the queues taken
//! in turn, the table of jobs in flight and the stop protocol's signals;
//! and claiming, which both loops do the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::config::ProcessorConfig;
use super::in_flight::InFlight;
use super::reports::Requests;
use super::runtime::AsyncJobs;
use super::stop::Stop;
use crate::{BaseQueue, Claimed, Error, Job, Registry};

pub(super) struct Engine {
    pub(super) backend: Arc<dyn BaseQueue>,
    pub(super) registry: &'static Registry,
    pub(super) config: ProcessorConfig,
    pub(super) queues: Vec<String>,
    next_queue: AtomicUsize,
    pub(super) in_flight: InFlight,
    pub(super) stop: Stop,
    /// Whether free workers claim for themselves: see `Capabilities::in_process`.
    pub(super) self_claims: bool,
    /// Async jobs held at once beyond the threads' (see
    /// `ProcessorConfig::concurrency`): 0 when no queue served has an
    /// async command.
    pub(super) async_slots: usize,
    pub(super) async_jobs: AsyncJobs,
    /// What running commands ask of the heartbeat.
    pub(super) requests: Arc<Requests>,
}

impl Engine {
    pub(super) fn new(
        backend: Arc<dyn BaseQueue>,
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
        let async_command = registry
            .commands()
            .find(|command| command.is_async() && queues.iter().any(|q| q == command.queue));
        let async_slots = match async_command {
            None => 0,
            Some(command) if !cfg!(feature = "runtime") => {
                return Err(Error::Config(format!(
                    "command {} is async: running it needs outband's `runtime` feature",
                    command.name
                )));
            }
            Some(command) if config.concurrency == 0 => {
                return Err(Error::Config(format!(
                    "command {} is async: concurrency must be at least 1 to run it",
                    command.name
                )));
            }
            Some(_) => config.concurrency,
        };
        Ok(Self {
            async_jobs: AsyncJobs::new(async_slots, config.async_threads),
            async_slots,
            self_claims: backend.capabilities().in_process,
            backend,
            registry,
            config,
            queues,
            next_queue: AtomicUsize::new(0),
            in_flight: InFlight::default(),
            stop: Stop::default(),
            requests: Arc::default(),
        })
    }

    /// The most leases the multi loop holds: `max_threads + prefetch +
    /// concurrency`, `prefetch` at its most and `concurrency` counted only
    /// when a queue served has an async command.
    pub(super) fn lease_limit(&self) -> usize {
        self.lease_base().saturating_add(self.config.prefetch.max())
    }

    /// The leases the multi loop holds with nothing claimed ahead:
    /// `max_threads + concurrency`.
    pub(super) fn lease_base(&self) -> usize {
        self.config.max_threads.saturating_add(self.async_slots)
    }

    /// Whether `job` runs on the async runtime: its command is async, and
    /// this processor runs async commands.
    pub(super) fn runs_async(&self, job: &Job) -> bool {
        self.async_slots > 0
            && self
                .registry
                .get(&job.command)
                .is_ok_and(crate::Command::is_async)
    }

    /// The queue to try first in the next claim: each claim starts one queue
    /// further, so that no queue starves.
    pub(super) fn next_queue(&self) -> usize {
        self.next_queue.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn has_jobs_waiting(&self) -> Result<bool, Error> {
        for queue in &self.queues {
            if self.backend.has_jobs_waiting(queue)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Claims up to `max` jobs, trying each queue in turn, starting after the
    /// one that was tried first last time so no queue starves.
    pub(super) fn claim(&self, max: usize) -> Result<Vec<Claimed>, Error> {
        let start = self.next_queue();
        let mut claimed = Vec::new();
        for i in 0..self.queues.len() {
            let queue = &self.queues[(start + i) % self.queues.len()];
            let started = Instant::now();
            let jobs = self
                .backend
                .claim(queue, max - claimed.len(), self.config.lease)?;
            if let Some(observer) = crate::observe::observer() {
                observer.claimed(queue, jobs.len(), started.elapsed());
            }
            claimed.extend(jobs);
            if claimed.len() == max {
                break;
            }
        }
        Ok(claimed)
    }

    /// Claims up to `max` jobs for the loops and holds them (see
    /// [`hold`](Self::hold)): from the call to the backend until they are
    /// held, they count as claims in flight.
    pub(super) fn claim_held(&self, max: usize) -> Result<Vec<Claimed>, Error> {
        self.stop.claim_sent(max);
        let claimed = self.claim(max);
        if let Ok(claimed) = &claimed {
            self.hold(claimed);
        }
        self.stop.claim_landed(max);
        claimed
    }

    /// Waits for a job after an empty claim; `idle` counts the empty claims
    /// in a row, which grow the wait with `wait_backoff`.
    pub(super) fn idle_wait(&self, idle: &mut i32) {
        let wait = self.config.idle_wait_time(*idle);
        *idle = idle.saturating_add(1).min(1000);
        if let Err(error) = self.backend.wait(&self.queues, wait) {
            log::warn!("waiting for jobs failed: {error}");
            std::thread::sleep(wait);
        }
    }
}
