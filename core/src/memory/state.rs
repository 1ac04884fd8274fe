//! The state of a [`MemoryQueue`](super::MemoryQueue) behind its mutex: the
//! jobs, each queue's ready and scheduled sets and ordering-key lines, and
//! the indexes that recovery and the purge read.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::SystemTime;

use crate::{ConsumerInfo, Job, JobId, JobState, Lease};

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) next_id: u64,
    pub(super) next_token: u64,
    pub(super) jobs: HashMap<JobId, Record>,
    pub(super) queues: HashMap<String, Lane>,
    /// Running jobs by lease deadline, for `recover_expired`.
    pub(super) leases: BTreeSet<(SystemTime, JobId)>,
    /// Done and cancelled jobs by finish time, for `purge`.
    pub(super) finished: BTreeSet<(SystemTime, JobId)>,
    pub(super) ticks: HashSet<(String, SystemTime)>,
    /// The paused queues: claims on them take nothing.
    pub(super) paused: BTreeSet<String>,
    /// Each unique key and the last job stored with it.
    pub(super) unique: HashMap<String, JobId>,
    /// Each concurrency key with a job running or passed over.
    pub(super) limits: HashMap<String, LimitLine>,
    /// Each rate key that ever started a job.
    pub(super) rates: HashMap<String, RateLine>,
    /// Each registered consumer by id, with when it was seen and when its
    /// ttl ends.
    pub(super) consumers: HashMap<String, (ConsumerInfo, SystemTime, SystemTime)>,
    /// Threads blocked in `wait`; with none, nothing needs a wake-up.
    pub(super) waiters: usize,
    /// Threads blocked in `wait_finished`.
    pub(super) finish_waiters: usize,
    /// The open cancel feeds.
    pub(super) feeds: super::feed::Feeds,
}

#[derive(Debug)]
pub(super) struct Record {
    pub(super) job: Job,
    /// The live lease's token and deadline while `running`.
    pub(super) lease: Option<(u64, SystemTime)>,
    /// Why the job was cancelled while it ran, if it was.
    pub(super) cancel: Option<String>,
}

/// The jobs of one concurrency key: how many run, and the ready ones a
/// claim passed over while the key was full, which are in no lane's
/// `ready` until a running one leaves.
#[derive(Debug, Default)]
pub(super) struct LimitLine {
    pub(super) running: u32,
    pub(super) parked: BTreeSet<ReadyKey>,
}

/// The jobs of one rate key: its theoretical arrival time (see
/// [`RateLimit::admit`](crate::RateLimit::admit)), and the ready jobs a
/// claim passed over until their turn, which are in no lane's `ready` until
/// then.
#[derive(Debug)]
pub(super) struct RateLine {
    pub(super) tat: SystemTime,
    /// When the first parked job may start.
    pub(super) next: SystemTime,
    pub(super) parked: BTreeSet<ReadyKey>,
}

/// Ready order: highest priority first, then enqueue order (ids grow).
pub(super) type ReadyKey = (Reverse<i16>, JobId);

#[derive(Debug, Default)]
pub(super) struct Lane {
    pub(super) ready: BTreeSet<ReadyKey>,
    pub(super) scheduled: BTreeSet<(SystemTime, JobId)>,
    pub(super) keys: HashMap<String, KeyLine>,
    pub(super) counts: [u64; 5],
}

/// The line of jobs sharing one ordering key.
#[derive(Debug, Default)]
pub(super) struct KeyLine {
    /// The job that owns the key: running, or pending at the head.
    pub(super) owner: Option<JobId>,
    /// Later pending jobs, in enqueue order.
    pub(super) waiting: VecDeque<JobId>,
}

pub(super) fn slot(state: JobState) -> usize {
    match state {
        JobState::Pending => 0,
        JobState::Running => 1,
        JobState::Done => 2,
        JobState::Dead => 3,
        JobState::Cancelled => 4,
    }
}

impl State {
    /// Stores a validated new job as `pending` and returns its id.
    pub(super) fn store(&mut self, new: crate::NewJob, now: SystemTime) -> JobId {
        self.next_id += 1;
        let id = JobId(self.next_id);
        let job = crate::backend::fate::new_job(new, id, now);
        self.lane(&job.queue).counts[slot(JobState::Pending)] += 1;
        self.jobs.insert(
            id,
            Record {
                job,
                lease: None,
                cancel: None,
            },
        );
        self.place_pending(id, now);
        id
    }

    pub(super) fn lane(&mut self, queue: &str) -> &mut Lane {
        if !self.queues.contains_key(queue) {
            self.queues.insert(queue.to_owned(), Lane::default());
        }
        self.queues.get_mut(queue).expect("inserted above")
    }

    /// Puts a pending job where a claim can see it, if it may run: into
    /// `ready` or `scheduled` when it owns its key (or has none), else behind
    /// the key's owner.
    pub(super) fn place_pending(&mut self, id: JobId, now: SystemTime) {
        let record = &self.jobs[&id];
        let (queue, key, priority, run_at) = (
            record.job.queue.clone(),
            record.job.key.clone(),
            record.job.priority,
            record.job.run_at,
        );
        let lane = self.lane(&queue);
        if let Some(key) = key {
            let line = lane.keys.entry(key).or_default();
            match line.owner {
                None => line.owner = Some(id),
                Some(owner) if owner == id => {}
                Some(_) => {
                    // a retried or recovered job keeps its place: by id
                    let at = line.waiting.partition_point(|&w| w < id);
                    line.waiting.insert(at, id);
                    return;
                }
            }
        }
        if run_at <= now {
            lane.ready.insert((Reverse(priority), id));
        } else {
            lane.scheduled.insert((run_at, id));
        }
    }

    /// Whether a claim may start job `id` now as far as its concurrency
    /// limit goes. If it may, the job takes a slot of its key; if not, it is
    /// parked on the key until a running job of the key leaves.
    pub(super) fn take_slot(&mut self, id: JobId) -> bool {
        let record = &self.jobs[&id];
        let Some(limit) = &record.job.concurrency else {
            return true;
        };
        let line = self.limits.entry(limit.key.clone()).or_default();
        if line.running < limit.max {
            line.running += 1;
            true
        } else {
            line.parked.insert((Reverse(record.job.priority), id));
            false
        }
    }

    /// Whether a claim may start job `id` at `now` as far as its rate limit
    /// goes. If it may, the start is counted; if not, the job is parked on
    /// its key until its turn.
    pub(super) fn take_turn(&mut self, id: JobId, now: SystemTime) -> bool {
        let record = &self.jobs[&id];
        let Some(rate) = &record.job.rate else {
            return true;
        };
        let line = self.rates.get_mut(&rate.key);
        match rate.admit(line.as_ref().map(|line| line.tat), now) {
            Ok(tat) => {
                match line {
                    Some(line) => line.tat = tat,
                    None => {
                        self.rates.insert(
                            rate.key.clone(),
                            RateLine {
                                tat,
                                next: tat,
                                parked: BTreeSet::new(),
                            },
                        );
                    }
                }
                true
            }
            Err(at) => {
                let line = line.expect("a refused key has started a job");
                if line.parked.is_empty() || at < line.next {
                    line.next = at;
                }
                line.parked.insert((Reverse(record.job.priority), id));
                false
            }
        }
    }

    /// Puts the jobs parked on rate keys whose turn has come back into their
    /// lanes' `ready`; returns the earliest time a parked job's turn comes,
    /// if one is still parked.
    pub(super) fn promote_turns(&mut self, now: SystemTime) -> Option<SystemTime> {
        let mut woken = Vec::new();
        let mut earliest = None::<SystemTime>;
        for line in self.rates.values_mut() {
            if line.parked.is_empty() {
                continue;
            }
            if line.next <= now {
                woken.extend(std::mem::take(&mut line.parked));
            } else {
                earliest = Some(earliest.map_or(line.next, |at| at.min(line.next)));
            }
        }
        for ready in woken {
            let queue = self.jobs[&ready.1].job.queue.clone();
            self.lane(&queue).ready.insert(ready);
        }
        earliest
    }

    /// Gives back the slot [`take_slot`](Self::take_slot) took for a job
    /// that does not start after all (its rate refused it).
    pub(super) fn untake_slot(&mut self, id: JobId) {
        if let Some(limit) = &self.jobs[&id].job.concurrency
            && let Some(line) = self.limits.get_mut(&limit.key)
        {
            line.running = line.running.saturating_sub(1);
        }
    }

    /// Gives back the slot of a job that has left `running`, and puts the
    /// first job parked on its key back into its lane's `ready`.
    fn give_slot(&mut self, id: JobId) {
        let Some(key) = self.jobs[&id]
            .job
            .concurrency
            .as_ref()
            .map(|c| c.key.clone())
        else {
            return;
        };
        let Some(line) = self.limits.get_mut(&key) else {
            return;
        };
        line.running = line.running.saturating_sub(1);
        let next = line.parked.pop_first();
        if line.running == 0 && line.parked.is_empty() {
            self.limits.remove(&key);
        }
        if let Some(ready) = next {
            let queue = self.jobs[&ready.1].job.queue.clone();
            self.lane(&queue).ready.insert(ready);
        }
    }

    /// Takes a pending job off its keys' parked sets, if it is there.
    fn unpark(&mut self, id: JobId) {
        let record = &self.jobs[&id];
        if let Some(rate) = &record.job.rate
            && let Some(line) = self.rates.get_mut(&rate.key)
        {
            line.parked.remove(&(Reverse(record.job.priority), id));
        }
        if let Some(limit) = &record.job.concurrency
            && let Some(line) = self.limits.get_mut(&limit.key)
        {
            line.parked.remove(&(Reverse(record.job.priority), id));
            if line.running == 0 && line.parked.is_empty() {
                self.limits.remove(&limit.key);
            }
        }
    }

    /// Removes a pending job from wherever `place_pending` put it; a job that
    /// owned its key still does, and the caller hands the key on.
    pub(super) fn unplace_pending(&mut self, id: JobId) {
        self.unpark(id);
        let job = &self.jobs[&id].job;
        let (queue, key, priority, run_at) =
            (job.queue.clone(), job.key.clone(), job.priority, job.run_at);
        let lane = self.lane(&queue);
        lane.ready.remove(&(Reverse(priority), id));
        lane.scheduled.remove(&(run_at, id));
        if let Some(key) = key
            && let Some(line) = lane.keys.get_mut(&key)
        {
            line.waiting.retain(|&w| w != id);
        }
    }

    /// Hands an ordering key on from `id` to the next job waiting for it.
    pub(super) fn release_key(
        &mut self,
        queue: &str,
        key: Option<&str>,
        id: JobId,
        now: SystemTime,
    ) {
        let Some(key) = key else { return };
        let lane = self.lane(queue);
        let Some(line) = lane.keys.get_mut(key) else {
            return;
        };
        if line.owner != Some(id) {
            return;
        }
        line.owner = None;
        match line.waiting.pop_front() {
            Some(next) => self.place_pending(next, now),
            None => {
                lane.keys.remove(key);
            }
        }
    }

    pub(super) fn set_state(&mut self, id: JobId, state: JobState) {
        let record = self.jobs.get_mut(&id).expect("job exists");
        let old = record.job.state;
        record.job.state = state;
        let queue = record.job.queue.clone();
        let lane = self.lane(&queue);
        lane.counts[slot(old)] -= 1;
        lane.counts[slot(state)] += 1;
    }

    /// Moves the due scheduled jobs of `queue` to ready.
    pub(super) fn promote_due(&mut self, queue: &str, now: SystemTime) {
        let Some(lane) = self.queues.get_mut(queue) else {
            return;
        };
        while let Some(&(run_at, id)) = lane.scheduled.first() {
            if run_at > now {
                break;
            }
            lane.scheduled.pop_first();
            let priority = self.jobs[&id].job.priority;
            lane.ready.insert((Reverse(priority), id));
        }
    }

    /// The record of the job held under `lease`, if the lease is live.
    pub(super) fn leased(&mut self, lease: &Lease) -> Option<&mut Record> {
        self.jobs
            .get_mut(&lease.job)
            .filter(|r| r.job.state == JobState::Running)
            .filter(|r| r.lease.is_some_and(|(token, _)| token == lease.token))
    }

    /// Ends a running job's lease bookkeeping.
    pub(super) fn drop_lease(&mut self, id: JobId) {
        let record = self.jobs.get_mut(&id).expect("job exists");
        if let Some((_, deadline)) = record.lease.take() {
            self.leases.remove(&(deadline, id));
        }
    }

    /// Files a job that has just left `running`, its record already changed
    /// by [`fate`]: its lease and count go, and it is placed as its new state
    /// wants. A pending job still owns its key, so it goes straight back to
    /// the head of its line; a finished one hands its key on.
    pub(super) fn left_running(&mut self, id: JobId, now: SystemTime) {
        self.drop_lease(id);
        self.give_slot(id);
        let job = &self.jobs[&id].job;
        let (state, queue, key) = (job.state, job.queue.clone(), job.key.clone());
        let lane = self.lane(&queue);
        lane.counts[slot(JobState::Running)] -= 1;
        lane.counts[slot(state)] += 1;
        match state {
            JobState::Pending => self.place_pending(id, now),
            JobState::Done | JobState::Cancelled => {
                self.finished.insert((now, id));
                self.release_key(&queue, key.as_deref(), id, now);
            }
            JobState::Dead => self.release_key(&queue, key.as_deref(), id, now),
            JobState::Running => {}
        }
    }

    /// Deletes a job that is pending, dead, or purged.
    pub(super) fn remove(&mut self, id: JobId) {
        if self.jobs[&id].job.state == JobState::Pending {
            self.unpark(id);
        }
        let record = self.jobs.remove(&id).expect("job exists");
        let lane = self.lane(&record.job.queue);
        lane.counts[slot(record.job.state)] -= 1;
    }
}
