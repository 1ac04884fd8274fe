//! [`BaseQueue`], the contract every backend keeps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::{
    Cancellation, Claimed, Completion, Consumer, ConsumerInfo, Enqueued, Error, Heartbeat, Job,
    JobId, JobPage, JobQuery, Lease, NewJob, Outcome, Progress, QueueStats, Recovered,
};

/// A store of jobs that producers write to and consumers claim from: Redis,
/// an SQL database, memory, or one of your own.
///
/// # The contract
///
/// A backend is a shared handle: it is `Send + Sync`, every method takes
/// `&self`, and one value is used by many threads at once (behind an [`Arc`]).
/// Each method below states what it promises; [`crate::test_suite`] checks
/// those promises, and a backend is correct when it passes that suite.
/// Outsiders may implement this trait: `MemoryQueue`'s source is the model to
/// copy.
///
/// **States.** A job is in exactly one of `pending`, `running`, `done`, `dead`
/// at any time, and moves only as the methods below say.
///
/// **Ready.** A pending job is *ready* when its `run_at` has passed on the
/// backend's clock and, if it has an ordering key, no other job with that key
/// is `running` and no job with that key enqueued before it is `pending`.
/// Claims take ready jobs only, highest priority first, then in enqueue order.
///
/// **Clock.** Every time the backend compares — `run_at`, lease deadlines,
/// purge ages — is read from the backend's own clock (Redis `TIME`, SQL
/// `now()`), never from the caller's, so consumers on different hosts agree.
///
/// **Leases.** A claim gives each job a [`Lease`] with a new fencing token and
/// a deadline. [`heartbeat`](Self::heartbeat) and [`complete`](Self::complete)
/// act only while the job is still `running` under that same token; otherwise
/// they change nothing and report the lease lost. A lease whose deadline has
/// passed still holds until [`recover_expired`](Self::recover_expired) takes
/// the job back, so a late worker may still complete it if no one recovered it.
///
/// **Delivery** is at least once: a job runs twice only when its worker died
/// or lost its lease.
///
/// **Failures.** A method that could not reach the backend returns
/// [`Error::Unavailable`] and changed nothing it did not report; any other
/// failure is [`Error::Backend`]. No method drops data silently or retries in
/// the background.
pub trait BaseQueue: Send + Sync {
    /// Stores one new job and returns its id.
    ///
    /// The job is durable (as durable as the backend) when this returns `Ok`.
    /// A job that [`NewJob::validate`] refuses is an [`Error::InvalidJob`] or
    /// [`Error::Codec`] and nothing is stored.
    ///
    /// A job with a [unique key](NewJob::unique) goes to
    /// [`enqueue_unique`](Self::enqueue_unique), and its id is that of the
    /// job holding the key.
    fn enqueue(&self, job: NewJob) -> Result<JobId, Error> {
        if job.unique.is_some() {
            return self.enqueue_unique(job).map(|enqueued| enqueued.id);
        }
        let ids = self.enqueue_many(vec![job])?;
        ids.into_iter()
            .next()
            .ok_or_else(|| Error::backend("enqueue_many returned no id for one job"))
    }

    /// Stores new jobs atomically, all or none, and returns their ids in the
    /// same order. Their enqueue order is the order given.
    ///
    /// If any job is invalid, or the backend fails part way, nothing is
    /// stored. A job with a unique key is invalid here
    /// ([`fate::validate_batch`](crate::backend::fate::validate_batch)).
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error>;

    /// Stores one job unless a job holding its unique key is still in the
    /// key's scope, atomically: any number of producers racing the same key
    /// store one job between them.
    ///
    /// The job holding `job.unique`'s key is the last job stored with that
    /// key; it holds it while [`UniqueUntil::holds`](crate::UniqueUntil::holds)
    /// says so of its state (on the backend's clock, with the new job's
    /// scope), and not once it was purged or deleted. If it holds it,
    /// nothing is stored and [`Enqueued::duplicate_of`] its id is returned;
    /// otherwise the job is stored as [`enqueue`](Self::enqueue) stores it,
    /// takes the key, and [`Enqueued::new`] returns its id. A job without a
    /// unique key is just stored. Keys are global to the backend, across
    /// queues.
    ///
    /// The default stores a job without a key, and refuses one with a key
    /// with [`Error::Backend`], so that a backend written before unique jobs
    /// existed never stores a duplicate silently.
    fn enqueue_unique(&self, job: NewJob) -> Result<Enqueued, Error> {
        if job.unique.is_some() {
            return Err(Error::backend("this backend does not keep unique jobs"));
        }
        let ids = self.enqueue_many(vec![job])?;
        ids.into_iter()
            .next()
            .map(Enqueued::new)
            .ok_or_else(|| Error::backend("enqueue_many returned no id for one job"))
    }

    /// Moves up to `max` ready jobs of `queue` to `running`, each under a new
    /// lease that ends `lease` from now on the backend's clock, and returns them.
    ///
    /// Each returned job has `attempt` increased by one and `started_at` set.
    /// No job is ever handed to two callers under live leases. Returns an empty
    /// list when nothing is ready; it does not wait (see [`wait`](Self::wait)).
    fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error>;

    /// Blocks until a job of one of `queues` may be ready, or `timeout` passes.
    ///
    /// A backend that can be woken (a condition variable, Redis blocking pops,
    /// PostgreSQL `LISTEN`) returns as soon as a job is enqueued, retried or
    /// unblocked, or a scheduled job falls due; the default polls, sleeping the
    /// whole `timeout`. Returning early without a job is allowed; the caller
    /// claims again either way.
    fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), Error> {
        let _ = queues;
        std::thread::sleep(timeout);
        Ok(())
    }

    /// Blocks until job `id` may have finished (`done`, `dead` or
    /// `cancelled`), or `timeout` passes: what a [`JobHandle`](crate::JobHandle)
    /// waits on between two looks at the job.
    ///
    /// A backend that says [`Capabilities::finish_wakeups`] returns at once
    /// when the job has finished already or is unknown, and otherwise as
    /// soon as it finishes, however it finishes and whichever process
    /// finishes it; it may also return early for no reason. The default
    /// sleeps the whole `timeout`, and a handle then calls it with short
    /// timeouts, polling. Either way the caller looks at the job again.
    fn wait_finished(&self, id: JobId, timeout: Duration) -> Result<(), Error> {
        let _ = id;
        std::thread::sleep(timeout);
        Ok(())
    }

    /// Whether [`claim`](Self::claim) on `queue` would find a ready job now:
    /// never while `queue` is [paused](Self::pause).
    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error>;

    /// Extends a live lease to end `lease` from now on the backend's clock.
    ///
    /// Returns [`Heartbeat::LeaseLost`], changing nothing, when the job is no
    /// longer `running` under this lease's token, and
    /// [`Heartbeat::CancelRequested`] once the job was cancelled while it
    /// runs (see [`cancel`](Self::cancel)).
    fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, Error>;

    /// Stores how far a running job got, replacing what it said before, if
    /// the lease is still held; [`Job::progress`] reads it back. A claim
    /// clears it; `done` and `dead` keep it.
    ///
    /// Returns [`Completion::LeaseLost`], changing nothing, when the job is
    /// no longer `running` under this lease's token. The default refuses
    /// with [`Error::Backend`]: a backend that does not store progress
    /// still runs jobs, and a consumer logs once that it cannot report it.
    fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, Error> {
        let _ = (lease, progress);
        Err(Error::backend("this backend does not store job progress"))
    }

    /// Completes an attempt: records how it ended, if the lease is still held:
    ///
    /// - [`Outcome::Done`]: `done`, with `finished_at`, duration and result;
    ///   the next job with the same ordering key becomes ready.
    /// - [`Outcome::Retry`]: `pending`, ready `delay` from now, with the error;
    ///   it stays ahead of later jobs with the same ordering key.
    /// - [`Outcome::Dead`]: `dead`, with `finished_at` and the error.
    /// - [`Outcome::Release`]: `pending`, ready now, the attempt not counted.
    ///
    /// The caller decides between retry and dead (it knows `attempt` and
    /// `max_attempts`). Returns [`Completion::LeaseLost`], changing nothing,
    /// when the job is no longer `running` under this lease's token.
    fn complete(&self, lease: &Lease, outcome: Outcome) -> Result<Completion, Error>;

    /// [`complete`](Self::complete) for several leases at once, in order, as
    /// one round trip where the backend can. The default completes one by one.
    fn complete_many(&self, completions: Vec<(Lease, Outcome)>) -> Result<Vec<Completion>, Error> {
        completions
            .into_iter()
            .map(|(lease, outcome)| self.complete(&lease, outcome))
            .collect()
    }

    /// Completes jobs as [`complete_many`](Self::complete_many) does, then
    /// claims up to `max` jobs of `queue` as [`claim`](Self::claim) does, in
    /// one round trip (one script, one transaction) where the backend can.
    ///
    /// This is how a consumer hands back the leases of finished jobs and
    /// takes as many next ones without ever holding more leases than its
    /// limit (threads plus prefetch), at the cost of one call. An `Err` means no job was completed and none claimed,
    /// as with [`complete_many`](Self::complete_many). The default calls the
    /// two in turn; when the claim fails after the jobs were completed, it
    /// logs the error and returns no jobs, since the outcomes must not be
    /// reported as not completed.
    fn complete_and_claim(
        &self,
        completions: Vec<(Lease, Outcome)>,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<(Vec<Completion>, Vec<Claimed>), Error> {
        let completed = self.complete_many(completions)?;
        if max == 0 {
            return Ok((completed, Vec::new()));
        }
        match self.claim(queue, max, lease) {
            Ok(claimed) => Ok((completed, claimed)),
            Err(error) => {
                log::warn!("claiming from {queue} after completing jobs failed: {error}");
                Ok((completed, Vec::new()))
            }
        }
    }

    /// One step of recovery: every `running` job whose lease deadline has
    /// passed is decided by [`fate::expired`](crate::backend::fate::expired):
    /// back to `pending`, ready now, its attempt counted, while
    /// `attempt < max_attempts`; else to `dead`, with `finished_at`. Either
    /// way its `last_error` becomes `lease expired on attempt n of m`
    /// ([`fate::lease_expired`](crate::backend::fate::lease_expired)). The
    /// step is atomic per job, so any number of consumers may run it at once:
    /// [`maintenance`](crate::maintenance) runs it in every started processor.
    fn recover_expired(&self) -> Result<Recovered, Error>;

    /// The number of `pending` jobs in `queue`, scheduled ones included.
    fn len(&self, queue: &str) -> Result<u64, Error>;

    /// Whether `queue` has no `pending` job.
    fn is_empty(&self, queue: &str) -> Result<bool, Error> {
        Ok(self.len(queue)? == 0)
    }

    /// Deletes every `pending` job of `queue` and returns how many. Running
    /// jobs keep their leases; `done` and `dead` jobs stay.
    fn flush(&self, queue: &str) -> Result<u64, Error>;

    /// Counts per state, throughput and run times of `queue`, and whether it
    /// is [paused](Self::pause).
    fn stats(&self, queue: &str) -> Result<QueueStats, Error>;

    /// [`stats`](Self::stats), for a page that must answer at once whatever
    /// the queue holds: each state's jobs are counted exactly up to
    /// `exact_up_to`, and a backend whose count takes time in proportion
    /// to the jobs counted may give an estimate above that, and lists the
    /// state in [`QueueStats::estimated`]. An estimate is never below
    /// `exact_up_to`. The dashboard's pages call this; the CLI's `stats`
    /// and the metrics count exactly.
    ///
    /// By default, and on backends whose counts cost the same at any size
    /// (memory, Redis), the counts are exact.
    fn estimate_stats(&self, queue: &str, exact_up_to: u64) -> Result<QueueStats, Error> {
        let _ = exact_up_to;
        self.stats(queue)
    }

    /// The names of the queues that hold at least one job, in any state.
    fn queues(&self) -> Result<Vec<String>, Error>;

    /// One job's record, or `None` if it never existed or was purged or
    /// deleted.
    fn job(&self, id: JobId) -> Result<Option<Job>, Error>;

    /// A page of the jobs of `query.queue` in `query.state` (and of
    /// `query.command`, if set), by id descending, starting below
    /// `query.before`: at most [`JobQuery::page_size`] jobs, each as
    /// [`job`](Self::job) would give it.
    ///
    /// A call examines at most [`JobQuery::SCAN`] jobs beyond those it
    /// returns, whatever the backend holds, so a page costs the same at a
    /// thousand jobs as at millions. When the jobs it examined ran out
    /// before the page filled, [`JobPage::next`] is `Some` if older jobs
    /// remain to examine: a page may be short, even empty, and the listing
    /// is over only when `next` is `None`. `next` is never above an id
    /// returned. Walking the pages of a listing while no job changes state
    /// gives each matching job exactly once; a job that changes state
    /// between pages may be missed or shown in its new state.
    ///
    /// The default refuses with [`Error::Backend`], so that a backend
    /// written before listings existed still compiles.
    fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let _ = query;
        Err(Error::backend("this backend does not list jobs"))
    }

    /// Up to `limit` `dead` jobs of `queue`, most recently dead first,
    /// skipping the first `offset`.
    fn dead_jobs(&self, queue: &str, offset: usize, limit: usize) -> Result<Vec<Job>, Error>;

    /// Moves a `dead` job back to `pending`, ready now, with its attempts
    /// reset to 0. Returns `false`, changing nothing, when the job is not dead.
    fn retry_dead(&self, id: JobId) -> Result<bool, Error>;

    /// Deletes a `dead` job. Returns `false`, changing nothing, when the job is
    /// not dead.
    fn delete_dead(&self, id: JobId) -> Result<bool, Error>;

    /// Cancels a job, with `reason` recorded as its `last_error`:
    ///
    /// - `pending` (ready, scheduled or behind its ordering key): it goes to
    ///   `cancelled` now, with `finished_at`, and hands its ordering key on
    ///   as a finished job does; [`Cancellation::Cancelled`].
    /// - `running`: it is marked, and stays `running`
    ///   ([`Cancellation::Requested`]). Every later heartbeat of its lease
    ///   says [`Heartbeat::CancelRequested`]; a [`complete`](Self::complete)
    ///   with [`Outcome::Retry`] or [`Outcome::Release`], or a
    ///   [`recover_expired`](Self::recover_expired) of its lease, sends it
    ///   to `cancelled` (with the reason) instead of `pending` or `dead`;
    ///   `Done` and `Dead` apply as they are.
    /// - finished (`done`, `dead`, `cancelled`): nothing changes;
    ///   [`Cancellation::Finished`] with its state. A second cancel of a
    ///   running job changes nothing either, and says `Requested`.
    /// - unknown: [`Cancellation::NotFound`].
    fn cancel(&self, id: JobId, reason: &str) -> Result<Cancellation, Error>;

    /// A feed of cancel requests for running jobs, pushed by the backend as
    /// [`cancel`](Self::cancel) marks them, if the backend can push (Redis
    /// publishes them, PostgreSQL notifies them, memory signals them).
    ///
    /// A processor opens one when it starts and, for each id it receives
    /// of a job it runs, heartbeats that job at once: the heartbeat's
    /// [`Heartbeat::CancelRequested`] is what stops the job, so a feed is
    /// only a hint, and one that misses a request (its connection dropped)
    /// costs no more than the wait for the job's next regular heartbeat.
    /// `None` (the default): the processor learns of cancels through its
    /// heartbeats alone.
    fn cancel_feed(&self) -> Result<Option<Box<dyn CancelFeed>>, Error> {
        Ok(None)
    }

    /// Pauses `queue` for every consumer: from the next call on, and until
    /// [`resume`](Self::resume), [`claim`](Self::claim) on it (and the claim
    /// half of [`complete_and_claim`](Self::complete_and_claim)) returns
    /// nothing. Jobs already running go on and finish as usual; enqueues are
    /// accepted and wait, pending. The pause is stored in the backend, so it
    /// holds across consumer restarts and for consumers on other hosts.
    ///
    /// A queue that holds no job yet may be paused (it may be used later).
    /// Returns `true` when the queue was running and is now paused, `false`
    /// when it was paused already.
    ///
    /// The default refuses with [`Error::Backend`], so that a backend
    /// written before pauses existed still compiles.
    fn pause(&self, queue: &str) -> Result<bool, Error> {
        let _ = queue;
        Err(Error::backend("this backend does not pause queues"))
    }

    /// Resumes a [paused](Self::pause) queue: its ready jobs may be claimed
    /// again, and a backend that can be woken wakes consumers
    /// [waiting](Self::wait) on it. Returns `true` when the queue was paused,
    /// `false` (changing nothing) when it was not.
    ///
    /// The default refuses with [`Error::Backend`].
    fn resume(&self, queue: &str) -> Result<bool, Error> {
        let _ = queue;
        Err(Error::backend("this backend does not pause queues"))
    }

    /// The names of the paused queues, sorted. The default, for a backend
    /// that cannot pause, is none.
    fn paused(&self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    /// Deletes `done` and `cancelled` jobs that finished more than
    /// `older_than` ago and returns how many. `dead` jobs are kept for an
    /// operator.
    fn purge(&self, older_than: Duration) -> Result<u64, Error>;

    /// Claims the tick `tick` of the periodic command `name`: returns `true` to
    /// exactly one caller per `(name, tick)`, however many consumers ask.
    fn claim_tick(&self, name: &str, tick: SystemTime) -> Result<bool, Error>;

    /// The latest tick of the periodic command `name` that was
    /// [claimed](Self::claim_tick), or `None` when none was (or the backend
    /// has forgotten them all): what the dashboard shows as the last tick
    /// enqueued. A backend that keeps no ticks to read back returns `None`,
    /// the default.
    fn last_tick(&self, name: &str) -> Result<Option<SystemTime>, Error> {
        let _ = name;
        Ok(None)
    }

    /// Registers a consumer, or refreshes its registration (a heartbeat):
    /// stores `info` under `info.id`, replacing what that id said before,
    /// seen now on the backend's clock and alive until `ttl` after that.
    ///
    /// A backend removes the consumers gone for
    /// [`CONSUMER_FORGET_AFTER`](crate::CONSUMER_FORGET_AFTER) here, in
    /// [`consumers`](Self::consumers) or in
    /// [`recover_expired`](Self::recover_expired). The default stores
    /// nothing, for a backend without [`Capabilities::consumer_registry`]:
    /// a consumer runs the same without one.
    fn register_consumer(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> {
        let _ = (info, ttl);
        Ok(())
    }

    /// Removes consumer `id`'s registration, as a consumer does on a clean
    /// stop; an unknown id changes nothing. The default does nothing.
    fn unregister_consumer(&self, id: &str) -> Result<(), Error> {
        let _ = id;
        Ok(())
    }

    /// Every registered consumer not yet forgotten: alive ones first, then
    /// by [`started_at`](ConsumerInfo::started_at) (see
    /// [`Consumer::sort`]), each [`alive`](Consumer::alive) while its ttl
    /// has not passed on the backend's clock. The default, for a backend
    /// without a registry, is none.
    fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        Ok(Vec::new())
    }

    /// The backend's clock.
    fn now(&self) -> Result<SystemTime, Error>;

    /// What this backend is, for a processor to tune itself by: facts about
    /// the backend, not settings. Default: a server that takes concurrent
    /// writes, reached by a round trip.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// The backend's native async enqueue, if it has one: awaited enqueues
    /// ([`Enqueue`](crate::Enqueue)) then use it. `None` (the default)
    /// sends them to outband's blocking pool, which calls
    /// [`enqueue_many`](Self::enqueue_many) on a thread of its own, so a
    /// backend with only this sync contract works from async code as it is.
    fn as_async(&self) -> Option<&dyn AsyncEnqueue> {
        None
    }
}

/// Cancel requests for running jobs as a backend pushes them: see
/// [`BaseQueue::cancel_feed`].
///
/// A feed holds what it was sent between two calls of
/// [`next`](Self::next) (a subscription, a listening connection, a
/// queue in memory), from when it was opened.
pub trait CancelFeed: Send {
    /// Blocks until cancels were requested for running jobs, or `timeout`
    /// passes, and returns the ids of those jobs, in any order, each
    /// perhaps more than once; an empty list when none came. An error
    /// means the feed failed: the caller may open a new one.
    fn next(&mut self, timeout: Duration) -> Result<Vec<JobId>, Error>;
}

/// A future of a backend call, boxed so that [`AsyncEnqueue`] can be used
/// as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Native async I/O for enqueues: an optional capability of a backend whose
/// driver has it (Redis), offered through [`BaseQueue::as_async`]. It keeps
/// [`BaseQueue::enqueue_many`]'s contract exactly; only the waiting differs.
///
/// The future must not block the thread that polls it, and must work on
/// any tokio runtime the caller awaits it on (tests make a runtime each).
pub trait AsyncEnqueue: Send + Sync {
    /// [`BaseQueue::enqueue_many`], awaited.
    fn enqueue_many_async(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>>;

    /// [`BaseQueue::wait_finished`], awaited without holding a thread, if
    /// the backend can: [`JobHandle::result`](crate::JobHandle::result)
    /// then awaits it. `None` (the default) makes the handle poll with
    /// timers, so that an awaited result never holds a thread of the
    /// blocking pool that enqueues need.
    fn wait_finished_async(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Option<BoxFuture<'_, Result<(), Error>>> {
        let _ = (id, timeout);
        None
    }
}

macro_rules! forward_base_queue {
    ($($ptr:ty),*) => {$(
        impl<Q: BaseQueue + ?Sized> BaseQueue for $ptr {
            fn enqueue(&self, job: NewJob) -> Result<JobId, Error> { (**self).enqueue(job) }
            fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> { (**self).enqueue_many(jobs) }
            fn enqueue_unique(&self, job: NewJob) -> Result<Enqueued, Error> { (**self).enqueue_unique(job) }
            fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error> { (**self).claim(queue, max, lease) }
            fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), Error> { (**self).wait(queues, timeout) }
            fn wait_finished(&self, id: JobId, timeout: Duration) -> Result<(), Error> { (**self).wait_finished(id, timeout) }
            fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error> { (**self).has_jobs_waiting(queue) }
            fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, Error> { (**self).heartbeat(lease, lease_for) }
            fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, Error> { (**self).progress(lease, progress) }
            fn complete(&self, lease: &Lease, outcome: Outcome) -> Result<Completion, Error> { (**self).complete(lease, outcome) }
            fn complete_many(&self, completions: Vec<(Lease, Outcome)>) -> Result<Vec<Completion>, Error> { (**self).complete_many(completions) }
            fn complete_and_claim(&self, completions: Vec<(Lease, Outcome)>, queue: &str, max: usize, lease: Duration) -> Result<(Vec<Completion>, Vec<Claimed>), Error> { (**self).complete_and_claim(completions, queue, max, lease) }
            fn recover_expired(&self) -> Result<Recovered, Error> { (**self).recover_expired() }
            fn len(&self, queue: &str) -> Result<u64, Error> { (**self).len(queue) }
            fn is_empty(&self, queue: &str) -> Result<bool, Error> { (**self).is_empty(queue) }
            fn flush(&self, queue: &str) -> Result<u64, Error> { (**self).flush(queue) }
            fn stats(&self, queue: &str) -> Result<QueueStats, Error> { (**self).stats(queue) }
            fn estimate_stats(&self, queue: &str, exact_up_to: u64) -> Result<QueueStats, Error> { (**self).estimate_stats(queue, exact_up_to) }
            fn queues(&self) -> Result<Vec<String>, Error> { (**self).queues() }
            fn job(&self, id: JobId) -> Result<Option<Job>, Error> { (**self).job(id) }
            fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> { (**self).jobs(query) }
            fn dead_jobs(&self, queue: &str, offset: usize, limit: usize) -> Result<Vec<Job>, Error> { (**self).dead_jobs(queue, offset, limit) }
            fn retry_dead(&self, id: JobId) -> Result<bool, Error> { (**self).retry_dead(id) }
            fn delete_dead(&self, id: JobId) -> Result<bool, Error> { (**self).delete_dead(id) }
            fn cancel(&self, id: JobId, reason: &str) -> Result<Cancellation, Error> { (**self).cancel(id, reason) }
            fn cancel_feed(&self) -> Result<Option<Box<dyn CancelFeed>>, Error> { (**self).cancel_feed() }
            fn pause(&self, queue: &str) -> Result<bool, Error> { (**self).pause(queue) }
            fn resume(&self, queue: &str) -> Result<bool, Error> { (**self).resume(queue) }
            fn paused(&self) -> Result<Vec<String>, Error> { (**self).paused() }
            fn purge(&self, older_than: Duration) -> Result<u64, Error> { (**self).purge(older_than) }
            fn claim_tick(&self, name: &str, tick: SystemTime) -> Result<bool, Error> { (**self).claim_tick(name, tick) }
            fn last_tick(&self, name: &str) -> Result<Option<SystemTime>, Error> { (**self).last_tick(name) }
            fn register_consumer(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> { (**self).register_consumer(info, ttl) }
            fn unregister_consumer(&self, id: &str) -> Result<(), Error> { (**self).unregister_consumer(id) }
            fn consumers(&self) -> Result<Vec<Consumer>, Error> { (**self).consumers() }
            fn now(&self) -> Result<SystemTime, Error> { (**self).now() }
            fn capabilities(&self) -> Capabilities { (**self).capabilities() }
            fn as_async(&self) -> Option<&dyn AsyncEnqueue> { (**self).as_async() }
        }
    )*};
}

forward_base_queue!(Arc<Q>, Box<Q>, &Q);

/// What a backend is, from [`BaseQueue::capabilities`]: facts a processor
/// tunes itself by.
///
/// Built from [`Capabilities::default`] (a server reached by a round trip,
/// taking concurrent writes) and its setters, so that facts added later keep
/// a backend written today compiling.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The backend lives in this process: a claim costs no round trip, so a
    /// worker that has just finished claims its next job itself, where
    /// otherwise the processor claims for all its free leases in one call.
    pub in_process: bool,
    /// The backend serves one write at a time (SQLite): a multi processor
    /// then has one completing call in flight, not two (unless
    /// [`ProcessorConfig::completers`](crate::ProcessorConfig::completers)
    /// says otherwise).
    pub serial_writes: bool,
    /// [`BaseQueue::wait_finished`] returns as soon as the job finishes
    /// (a blocking pop, `LISTEN`, a condition variable), so a
    /// [`JobHandle`](crate::JobHandle) waits on it rather than polling.
    pub finish_wakeups: bool,
    /// The backend enforces [`NewJob::concurrency`] in its claims, across
    /// every process that claims from it. Outband's enqueues refuse a job
    /// with a concurrency limit on a backend that does not say so.
    pub concurrency_limits: bool,
    /// The backend enforces [`NewJob::rate`] in its claims, across every
    /// process that claims from it, and its `wait` ends when a job passed
    /// over for its rate may start. Outband's enqueues refuse a job with a
    /// rate limit on a backend that does not say so.
    pub rate_limits: bool,
    /// The backend keeps the consumer registry:
    /// [`BaseQueue::register_consumer`] stores, and
    /// [`BaseQueue::consumers`] lists, across every process that uses it.
    pub consumer_registry: bool,
}

impl Capabilities {
    /// Says whether the backend lives in this process.
    pub const fn in_process(mut self, yes: bool) -> Self {
        self.in_process = yes;
        self
    }

    /// Says whether the backend serves one write at a time.
    pub const fn serial_writes(mut self, yes: bool) -> Self {
        self.serial_writes = yes;
        self
    }

    /// Says whether [`BaseQueue::wait_finished`] wakes when the job
    /// finishes.
    pub const fn finish_wakeups(mut self, yes: bool) -> Self {
        self.finish_wakeups = yes;
        self
    }

    /// Says whether the backend enforces concurrency limits.
    pub const fn concurrency_limits(mut self, yes: bool) -> Self {
        self.concurrency_limits = yes;
        self
    }

    /// Says whether the backend enforces rate limits.
    pub const fn rate_limits(mut self, yes: bool) -> Self {
        self.rate_limits = yes;
        self
    }

    /// Says whether the backend keeps the consumer registry.
    pub const fn consumer_registry(mut self, yes: bool) -> Self {
        self.consumer_registry = yes;
        self
    }

    /// How many completing calls a multi processor has in flight at
    /// once when its configuration leaves it to the backend: 2, or 1 where
    /// writes go one at a time.
    pub const fn default_completers(self) -> usize {
        if self.serial_writes { 1 } else { 2 }
    }
}
