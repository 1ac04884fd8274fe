//! [`MemoryQueue`]: the complete in-memory backend.
//!
//! It keeps the whole [`BaseQueue`] contract inside one process and is what
//! tests use. It is also the model to copy when writing a backend of your own:
//! every method below is short and says which part of the contract it keeps.
//!
//! One mutex guards the whole state; a condition variable wakes
//! [`wait`](BaseQueue::wait)ers when a job becomes ready. Per queue, the state
//! keeps:
//!
//! - `ready`: pending jobs that may run now, ordered by priority then enqueue
//!   order (a `BTreeSet`, so a claim is `O(log n)`);
//! - `scheduled`: pending jobs whose `run_at` is in the future, by `run_at`;
//!   claims move the due ones to `ready` first;
//! - `keys`: for each ordering key, the job that owns it (running, or at the
//!   head of the line) and the later jobs waiting behind it, which are in
//!   neither set until the owner is done.
//!
//! Across queues, `limits` keeps each concurrency key's running count and
//! the ready jobs a claim passed over while the key was full: they leave
//! `ready` for the key's parked set, so that a claim or a `wait` never
//! looks at them again until a running job of the key leaves.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

mod feed;
mod state;

use state::{State, slot};

use crate::backend::fate;
use crate::backend::stats::{THROUGHPUT_WINDOW, fill_run_times};
use crate::{
    BaseQueue, CancelFeed, Cancellation, Capabilities, Claimed, Completion, Consumer, ConsumerInfo,
    Enqueued, Error, Heartbeat, Job, JobId, JobPage, JobQuery, JobState, Lease, NewJob, Outcome,
    Progress, QueueStats, Recovered,
};

/// A complete, thread-safe [`BaseQueue`] held in this process's memory.
///
/// Nothing survives the process. Use it in tests, in eager-like setups where
/// producer and consumer share a process, and as the model for custom
/// backends.
///
/// ```
/// use outband::{BaseQueue, MemoryQueue, NewJob};
/// use std::time::Duration;
///
/// let backend = MemoryQueue::new();
/// let id = backend.enqueue(NewJob::new("app::ping", outband::codec::encode(&())?))?;
/// let claimed = backend.claim("default", 10, Duration::from_secs(30))?;
/// assert_eq!(claimed[0].job.id, id);
/// # Ok::<(), outband::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    wakeup: Condvar,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the threads blocked in `wait` or `wait_finished`, if there are
    /// any: a job may have become ready, or finished.
    fn wake(&self, state: MutexGuard<'_, State>) {
        let waiting = state.waiters > 0 || state.finish_waiters > 0;
        drop(state);
        if waiting {
            self.wakeup.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent: every
        // method validates before it mutates.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl BaseQueue for MemoryQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        // All or nothing: validate every job before storing any.
        fate::validate_batch(&jobs)?;
        let now = SystemTime::now();
        let mut state = self.lock();
        let ids = jobs.into_iter().map(|new| state.store(new, now)).collect();
        self.wake(state);
        Ok(ids)
    }

    fn enqueue_unique(&self, job: NewJob) -> Result<Enqueued, Error> {
        let unique = fate::validate_unique(&job)?.cloned();
        let now = SystemTime::now();
        let mut state = self.lock();
        if let Some(unique) = &unique {
            // one lock: the look at the holder and the store are one step
            let holder = state.unique.get(&unique.key).copied();
            if let Some(record) = holder.and_then(|id| state.jobs.get(&id)) {
                let job = &record.job;
                if unique.until.holds(job.state, job.finished_at, now) {
                    return Ok(Enqueued::duplicate_of(job.id));
                }
            }
        }
        let id = state.store(job, now);
        if let Some(unique) = unique {
            state.unique.insert(unique.key, id);
        }
        self.wake(state);
        Ok(Enqueued::new(id))
    }

    fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error> {
        let now = SystemTime::now();
        let deadline = now + lease;
        let mut state = self.lock();
        if state.paused.contains(queue) {
            return Ok(Vec::new());
        }
        state.promote_due(queue, now);
        state.promote_turns(now);
        let mut claimed = Vec::new();
        while claimed.len() < max {
            let Some(lane) = state.queues.get_mut(queue) else {
                break;
            };
            let Some((_, id)) = lane.ready.pop_first() else {
                break;
            };
            if !state.take_slot(id) {
                continue;
            }
            if !state.take_turn(id, now) {
                state.untake_slot(id);
                continue;
            }
            state.next_token += 1;
            let token = state.next_token;
            state.set_state(id, JobState::Running);
            state.leases.insert((deadline, id));
            let record = state.jobs.get_mut(&id).expect("ready jobs exist");
            record.lease = Some((token, deadline));
            record.job.attempt += 1;
            record.job.started_at = Some(now);
            record.job.progress = None;
            claimed.push(Claimed {
                job: record.job.clone(),
                lease: Lease {
                    job: id,
                    token,
                    deadline,
                },
            });
        }
        Ok(claimed)
    }

    fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), Error> {
        let mut state = self.lock();
        let now = SystemTime::now();
        let mut timeout = timeout;
        if let Some(turn) = state.promote_turns(now) {
            timeout = timeout.min(turn.duration_since(now).unwrap_or_default());
        }
        for queue in queues {
            let Some(lane) = state.queues.get(queue) else {
                continue;
            };
            if state.paused.contains(queue) {
                // a resume wakes the waiters
                continue;
            }
            if !lane.ready.is_empty() {
                return Ok(());
            }
            if let Some(&(run_at, _)) = lane.scheduled.first() {
                timeout = timeout.min(run_at.duration_since(now).unwrap_or_default());
            }
        }
        if !timeout.is_zero() {
            state.waiters += 1;
            state = self
                .wakeup
                .wait_timeout(state, timeout)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
            state.waiters -= 1;
        }
        Ok(())
    }

    fn wait_finished(&self, id: JobId, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let running = state
                .jobs
                .get(&id)
                .is_some_and(|r| !r.job.state.is_finished());
            let left = deadline.saturating_duration_since(Instant::now());
            if !running || left.is_zero() {
                return Ok(());
            }
            state.finish_waiters += 1;
            state = self
                .wakeup
                .wait_timeout(state, left)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
            state.finish_waiters -= 1;
        }
    }

    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        state.promote_turns(now);
        if state.paused.contains(queue) {
            return Ok(false);
        }
        Ok(state.queues.get(queue).is_some_and(|lane| {
            !lane.ready.is_empty() || lane.scheduled.first().is_some_and(|&(at, _)| at <= now)
        }))
    }

    fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, Error> {
        let deadline = SystemTime::now() + lease_for;
        let mut state = self.lock();
        let Some(record) = state.leased(lease) else {
            return Ok(Heartbeat::LeaseLost);
        };
        let old = record.lease.replace((lease.token, deadline));
        let cancelled = record.cancel.is_some();
        if let Some((_, old_deadline)) = old {
            state.leases.remove(&(old_deadline, lease.job));
        }
        state.leases.insert((deadline, lease.job));
        Ok(if cancelled {
            Heartbeat::CancelRequested(deadline)
        } else {
            Heartbeat::Extended(deadline)
        })
    }

    fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, Error> {
        let mut state = self.lock();
        let Some(record) = state.leased(lease) else {
            return Ok(Completion::LeaseLost);
        };
        record.job.progress = Some(progress.clone());
        Ok(Completion::Applied)
    }

    fn complete(&self, lease: &Lease, outcome: Outcome) -> Result<Completion, Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let Some(record) = state.leased(lease) else {
            return Ok(Completion::LeaseLost);
        };
        match record.cancel.take() {
            Some(reason) if fate::ends_cancelled(&outcome) => {
                fate::cancel(&mut record.job, &reason, now);
            }
            _ => {
                fate::apply(&mut record.job, outcome, now);
            }
        }
        state.left_running(lease.job, now);
        self.wake(state);
        Ok(Completion::Applied)
    }

    fn recover_expired(&self) -> Result<Recovered, Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let mut recovered = Recovered::default();
        while let Some(&(deadline, id)) = state.leases.first() {
            if deadline > now {
                break;
            }
            let record = state.jobs.get_mut(&id).expect("leased jobs exist");
            if let Some(reason) = record.cancel.take() {
                fate::cancel(&mut record.job, &reason, now);
            } else {
                match fate::expire(&mut record.job, now) {
                    fate::Expired::Requeue { .. } => recovered.requeued += 1,
                    fate::Expired::Dead { .. } => recovered.dead += 1,
                }
            }
            state.left_running(id, now);
        }
        self.wake(state);
        Ok(recovered)
    }

    fn len(&self, queue: &str) -> Result<u64, Error> {
        let state = self.lock();
        Ok(state
            .queues
            .get(queue)
            .map_or(0, |lane| lane.counts[slot(JobState::Pending)]))
    }

    fn flush(&self, queue: &str) -> Result<u64, Error> {
        let mut state = self.lock();
        let pending: HashSet<JobId> = state
            .jobs
            .values()
            .filter(|r| r.job.queue == queue && r.job.state == JobState::Pending)
            .map(|r| r.job.id)
            .collect();
        if let Some(lane) = state.queues.get_mut(queue) {
            lane.ready.clear();
            lane.scheduled.clear();
            // keys owned by running jobs stay owned; their waiting lines go
            lane.keys.retain(|_, line| {
                line.waiting.clear();
                line.owner.is_some_and(|h| !pending.contains(&h))
            });
        }
        for &id in &pending {
            state.remove(id);
        }
        Ok(pending.len() as u64)
    }

    fn stats(&self, queue: &str) -> Result<QueueStats, Error> {
        let now = SystemTime::now();
        let state = self.lock();
        let paused = state.paused.contains(queue);
        let Some(lane) = state.queues.get(queue) else {
            return Ok(QueueStats {
                paused,
                ..QueueStats::default()
            });
        };
        let [pending, running, done, dead, cancelled] = lane.counts;
        let mut stats = QueueStats {
            pending,
            running,
            done,
            dead,
            cancelled,
            paused,
            ..QueueStats::default()
        };
        let since = now - THROUGHPUT_WINDOW;
        let mut run_times = Vec::with_capacity(done as usize);
        let mut in_window = 0;
        for record in state.jobs.values() {
            let job = &record.job;
            if job.queue == queue && job.state == JobState::Done {
                run_times.extend(job.duration);
                in_window += u64::from(job.finished_at.is_some_and(|at| at >= since));
            }
        }
        fill_run_times(&mut stats, run_times, in_window);
        Ok(stats)
    }

    fn queues(&self) -> Result<Vec<String>, Error> {
        let state = self.lock();
        let mut names: Vec<String> = state
            .queues
            .iter()
            .filter(|(_, lane)| lane.counts.iter().any(|&n| n > 0))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        Ok(self.lock().jobs.get(&id).map(|r| r.job.clone()))
    }

    /// Memory lives in this process: it examines every job it holds and
    /// always fills a page while jobs remain.
    fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let state = self.lock();
        let mut found: Vec<&Job> = state
            .jobs
            .values()
            .map(|r| &r.job)
            .filter(|job| query.before.is_none_or(|before| job.id < before))
            .filter(|job| query.matches(job))
            .collect();
        found.sort_unstable_by_key(|job| Reverse(job.id));
        let size = query.page_size();
        let next = (found.len() > size).then(|| found[size - 1].id);
        let jobs = found.into_iter().take(size).cloned().collect();
        Ok(JobPage::new(jobs, next))
    }

    fn dead_jobs(&self, queue: &str, offset: usize, limit: usize) -> Result<Vec<Job>, Error> {
        let state = self.lock();
        let mut dead: Vec<&Job> = state
            .jobs
            .values()
            .map(|r| &r.job)
            .filter(|job| job.queue == queue && job.state == JobState::Dead)
            .collect();
        dead.sort_unstable_by_key(|job| Reverse((job.finished_at, job.id)));
        Ok(dead.into_iter().skip(offset).take(limit).cloned().collect())
    }

    fn retry_dead(&self, id: JobId) -> Result<bool, Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let Some(record) = state
            .jobs
            .get_mut(&id)
            .filter(|r| r.job.state == JobState::Dead)
        else {
            return Ok(false);
        };
        record.job.attempt = 0;
        record.job.run_at = now;
        record.job.finished_at = None;
        state.set_state(id, JobState::Pending);
        state.place_pending(id, now);
        self.wake(state);
        Ok(true)
    }

    fn delete_dead(&self, id: JobId) -> Result<bool, Error> {
        let mut state = self.lock();
        if !state
            .jobs
            .get(&id)
            .is_some_and(|r| r.job.state == JobState::Dead)
        {
            return Ok(false);
        }
        state.remove(id);
        Ok(true)
    }

    fn cancel(&self, id: JobId, reason: &str) -> Result<Cancellation, Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let Some(record) = state.jobs.get_mut(&id) else {
            return Ok(Cancellation::NotFound);
        };
        match record.job.state {
            JobState::Running => {
                if record.cancel.is_none() {
                    record.cancel = Some(reason.to_owned());
                    state.feeds.send(id);
                }
                Ok(Cancellation::Requested)
            }
            JobState::Pending => {
                let (queue, key) = (record.job.queue.clone(), record.job.key.clone());
                state.unplace_pending(id);
                state.set_state(id, JobState::Cancelled);
                let record = state.jobs.get_mut(&id).expect("found above");
                fate::cancel(&mut record.job, reason, now);
                state.finished.insert((now, id));
                state.release_key(&queue, key.as_deref(), id, now);
                self.wake(state);
                Ok(Cancellation::Cancelled)
            }
            finished => Ok(Cancellation::Finished(finished)),
        }
    }

    fn cancel_feed(&self) -> Result<Option<Box<dyn CancelFeed>>, Error> {
        Ok(Some(Box::new(self.lock().feeds.open())))
    }

    fn purge(&self, older_than: Duration) -> Result<u64, Error> {
        let cutoff = SystemTime::now() - older_than;
        let mut state = self.lock();
        let mut purged = 0;
        while let Some(&(finished_at, id)) = state.finished.first() {
            if finished_at > cutoff {
                break;
            }
            // `done` and `cancelled` are final, and only purge deletes them
            state.finished.pop_first();
            state.remove(id);
            purged += 1;
        }
        // a key whose job is gone is free: forget it
        let State { unique, jobs, .. } = &mut *state;
        unique.retain(|_, id| jobs.contains_key(id));
        Ok(purged)
    }

    fn pause(&self, queue: &str) -> Result<bool, Error> {
        Ok(self.lock().paused.insert(queue.to_owned()))
    }

    fn resume(&self, queue: &str) -> Result<bool, Error> {
        let mut state = self.lock();
        let resumed = state.paused.remove(queue);
        self.wake(state);
        Ok(resumed)
    }

    fn paused(&self) -> Result<Vec<String>, Error> {
        Ok(self.lock().paused.iter().cloned().collect())
    }

    fn claim_tick(&self, name: &str, tick: SystemTime) -> Result<bool, Error> {
        Ok(self.lock().ticks.insert((name.to_owned(), tick)))
    }

    fn last_tick(&self, name: &str) -> Result<Option<SystemTime>, Error> {
        let state = self.lock();
        let ticks = state.ticks.iter().filter(|(of, _)| of == name);
        Ok(ticks.map(|&(_, tick)| tick).max())
    }

    fn register_consumer(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        state
            .consumers
            .retain(|_, (_, _, expires_at)| !Consumer::forgotten(*expires_at, now));
        state
            .consumers
            .insert(info.id.clone(), (info.clone(), now, now + ttl));
        Ok(())
    }

    fn unregister_consumer(&self, id: &str) -> Result<(), Error> {
        self.lock().consumers.remove(id);
        Ok(())
    }

    fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        let now = SystemTime::now();
        let mut state = self.lock();
        state
            .consumers
            .retain(|_, (_, _, expires_at)| !Consumer::forgotten(*expires_at, now));
        let mut consumers: Vec<_> = state
            .consumers
            .values()
            .map(|(info, seen_at, expires_at)| {
                Consumer::at(info.clone(), *seen_at, *expires_at, now)
            })
            .collect();
        Consumer::sort(&mut consumers);
        Ok(consumers)
    }

    fn now(&self) -> Result<SystemTime, Error> {
        Ok(SystemTime::now())
    }

    fn capabilities(&self) -> Capabilities {
        // `wait_finished` waits on the condition variable that every
        // completion, cancel and recovery signals
        Capabilities::default()
            .in_process(true)
            .finish_wakeups(true)
            .concurrency_limits(true)
            .rate_limits(true)
            .consumer_registry(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Blocks a thread in `wait` with a long timeout, runs `make_ready`, and
    /// returns how long the waiter waited.
    fn waited_for(backend: &MemoryQueue, make_ready: impl FnOnce(&MemoryQueue)) -> Duration {
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let start = Instant::now();
                backend
                    .wait(&["q".to_owned()], Duration::from_secs(60))
                    .unwrap();
                start.elapsed()
            });
            let deadline = Instant::now() + Duration::from_secs(60);
            while backend.lock().waiters == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the waiter never blocked in wait"
                );
                std::thread::yield_now();
            }
            make_ready(backend);
            waiter.join().unwrap()
        })
    }

    #[test]
    fn an_enqueue_wakes_a_waiting_consumer() {
        let backend = MemoryQueue::new();
        let waited = waited_for(&backend, |q| {
            q.enqueue(NewJob::new("c", vec![1]).queue("q")).unwrap();
        });
        assert!(
            waited < Duration::from_secs(60),
            "woken by the enqueue, not the timeout"
        );
    }

    #[test]
    fn a_resume_wakes_a_waiting_consumer() {
        let backend = MemoryQueue::new();
        backend.pause("q").unwrap();
        backend
            .enqueue(NewJob::new("c", vec![1]).queue("q"))
            .unwrap();
        let waited = waited_for(&backend, |q| {
            q.resume("q").unwrap();
        });
        assert!(
            waited < Duration::from_secs(60),
            "woken by the resume, not the timeout"
        );
    }

    #[test]
    fn a_finished_key_owner_wakes_a_waiting_consumer() {
        let backend = MemoryQueue::new();
        backend
            .enqueue(NewJob::new("c", vec![1]).queue("q").key("k"))
            .unwrap();
        backend
            .enqueue(NewJob::new("c", vec![1]).queue("q").key("k"))
            .unwrap();
        let first = backend
            .claim("q", 10, Duration::from_secs(60))
            .unwrap()
            .pop()
            .unwrap();
        let waited = waited_for(&backend, |q| {
            let done = Outcome::Done {
                result: None,
                duration: Duration::ZERO,
            };
            q.complete(&first.lease, done).unwrap();
        });
        assert!(
            waited < Duration::from_secs(60),
            "woken when the key was handed on"
        );
    }
}
