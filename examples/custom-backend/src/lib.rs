//! [`FileQueue`]: an outband backend written as a user would write one,
//! keeping its jobs as files in a directory and moving them between states
//! with atomic renames.
//!
//! It implements [`BaseQueue`] against outband's public API only, passes the
//! whole conformance suite (`tests/conformance.rs`), and registers the
//! `file://` URL scheme, so `outband::open`, `OUTBAND_URL` and the consumer
//! daemon can use it. The crate's `README.md` is the guide to writing a
//! backend; this code is its worked example.
//!
//! ```
//! use custom_backend::FileQueue;
//! use outband::{BaseQueue, NewJob};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let backend = FileQueue::open(dir.path())?;
//! let id = backend.enqueue(NewJob::new("app::ping", outband::codec::encode(&())?))?;
//! let claimed = backend.claim("default", 10, Duration::from_secs(30))?;
//! assert_eq!(claimed[0].job.id, id);
//! // the job is now a file in queues/default/running/
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The directory
//!
//! ```text
//! <root>/
//!   lock                          held (flock) by whoever reads or changes jobs
//!   counters.json                 the next job id and fencing token
//!   queues/<queue>/pending/<id>.json
//!   queues/<queue>/running/<id>.json
//!   queues/<queue>/done/<id>.json
//!   queues/<queue>/dead/<id>.json
//!   queues/<queue>/cancelled/<id>.json
//!   tmp/                          files being written, renamed into place when whole
//!   incoming/batch-<id>/          enqueued batches, committed, being filed
//!   ticks/<command>/<tick>        one empty file per claimed periodic tick
//!   paused/<queue>                one empty file per paused queue
//!   unique.json                   each unique key and the job holding it
//!   consumers.json                the consumer registry: each consumer's info, seen and expiry times
//!   malformed/                    files that were not job records, set aside
//! ```
//!
//! A job is one JSON file; its state is the directory it is in. Queue and
//! command names are escaped into file names (`%XX` for anything but ASCII
//! letters, digits, `_`, `-`, `.`) and must fit in 240 bytes once escaped.
//!
//! # How it keeps the contract
//!
//! - **Claim** renames a job's file from `pending/` to `running/`: the rename
//!   is the claim, atomic on a local filesystem, so a job is in one state
//!   and held by one lease at a time.
//! - **Decisions** — which job is ready given priorities and ordering keys,
//!   whether a lease's token still matches — read several files before they
//!   change one. A rename alone cannot make that atomic, so every operation
//!   holds an exclusive lock on `<root>/lock` (`File::lock`, `flock(2)` on
//!   Linux) for its duration, and a mutex for the threads of this process.
//!   The kernel drops the lock of a process that dies, so there is no stale
//!   lock to clean up.
//! - **Cancelling** a pending job rewrites its record (when, and why) and
//!   renames it into `cancelled/`. A running job is only marked: the request
//!   is a field of its record (`cancel`), which its heartbeats report and
//!   which `complete` and `recover_expired` turn into `cancelled` when the
//!   attempt would otherwise run again. Both happen under the lock, so a
//!   request never slips between a worker's outcome and the move it makes.
//! - **Unique keys** live in `unique.json`, each with the id of the last
//!   job stored with it. `enqueue_unique` reads it and the holder's file
//!   under the lock, and writes the key before the job, so a crash leaves
//!   at worst a key naming no job, which is free. `purge` drops the keys of
//!   purged jobs.
//! - **Pausing** a queue creates its empty file in `paused/`, and resuming
//!   removes it (both flushed to disk); a claim looks for the file under
//!   the lock, so every process stops claiming from its next claim.
//! - **Crash safety**: no file is written in place (temporary file, then
//!   rename); a batch is committed by one directory rename; the next lock
//!   holder finishes or discards what a dead one left. A crash between
//!   rewriting a job's record and moving it leaves the job in its old state
//!   with the new fields: a claim then counts one attempt that never ran, and
//!   an outcome is lost with the lease, so the job is recovered and runs
//!   again (delivery is at least once).
//! - **Durability**: an enqueue returns once its jobs are on disk (`fsync`
//!   of every file and directory it wrote). Claims, heartbeats and outcomes
//!   are not flushed: a process crash loses none of them, but a power loss
//!   may forget the latest ones, and those jobs run again — the trade
//!   `outband-diesel` makes on PostgreSQL with `synchronous_commit = off`.
//! - **Clock**: the host's clock (`SystemTime::now`). Every process sharing
//!   the directory is on this host, so they agree.
//! - **Fencing tokens** come from `counters.json`, so they are never reused,
//!   even across restarts.
//!
//! # Limits
//!
//! - **Local filesystems only.** `flock` and rename atomicity are not to be
//!   trusted on NFS or other network filesystems; several hosts cannot share
//!   the directory. Use Redis or an SQL database for that.
//! - **One operation at a time**, across every process sharing the
//!   directory.
//! - **`O(n)` operations**: a claim, `has_jobs_waiting` and `wait` list the
//!   queue's `pending/` and `running/` directories and sort the pending jobs
//!   (priorities and ordering keys come from an in-memory cache, so only the
//!   files of the jobs taken, and of scheduled jobs sorting ahead of them,
//!   are read); `stats` and `dead_jobs` read every done or dead file of the
//!   queue, and `purge` every done and cancelled file of every queue; `len`
//!   and `flush` list one directory; `job`, `cancel`, `heartbeat`,
//!   `complete` and the dead-letter calls look for the id in its queue's
//!   state directories when this process has seen the job, else in every
//!   queue's, `O(queues)`. Fine for thousands of jobs, not millions.
//! - **No push wake-up**: [`wait`](BaseQueue::wait) returns at once when a
//!   job is ready and otherwise sleeps the timeout, so a consumer notices a
//!   new job within its `wait_time`.
//! - **An enqueue costs one `fsync` per job** (plus three per batch), a few
//!   milliseconds each on a busy disk: batches do not make it cheaper per
//!   job, as they do on Redis or SQL.
//! - **The facts cache** (queue, priority and key of each live job, see
//!   `store.rs`) lives in each process; the manager step
//!   ([`recover_expired`](BaseQueue::recover_expired)) trims it of the jobs
//!   other processes finished.
//!
//! # Feature flags
//!
//! None.

mod record;
mod store;

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use outband::backend::fate;
use outband::backend::stats::{THROUGHPUT_WINDOW, fill_run_times};
use outband::{
    BaseQueue, Cancellation, Capabilities, Claimed, Completion, Consumer, ConsumerInfo, Enqueued,
    Error, Heartbeat, Job, JobId, JobPage, JobQuery, JobState, Lease, NewJob, Outcome, Progress,
    QueueStats, Recovered,
};

use crate::record::{LeaseRecord, Record, from_duration, from_time, to_time};
use crate::store::{
    ConsumerRecord, INCOMING, Inner, MALFORMED, PAUSED, QUEUES, Store, TICKS, TMP, escape,
    io_error, sync_dir,
};

/// The URL scheme this backend registers with [`outband::open`].
pub const SCHEME: &str = "file";

/// A [`BaseQueue`] that keeps its jobs as files in a directory on a local
/// filesystem; several processes on one host may share the directory.
///
/// See the [crate documentation](crate) for the layout, the guarantees and
/// the limits. Share one value between threads behind an [`Arc`]; open one
/// per process.
#[derive(Debug)]
pub struct FileQueue {
    root: PathBuf,
    /// The lock file and the facts cache, behind this process's mutex.
    inner: Mutex<Inner>,
}

impl FileQueue {
    /// Opens the queue in `dir`, creating the directory and its layout if
    /// they do not exist.
    ///
    /// Fails with [`Error::Backend`] when the directory cannot be created or
    /// written.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let root = dir.as_ref().to_path_buf();
        for sub in [TMP, INCOMING, QUEUES, TICKS, PAUSED, MALFORMED] {
            let path = root.join(sub);
            fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        let queue = Self {
            inner: Inner::open(&root)?,
            root,
        };
        // Finish what a process that died holding the lock left behind.
        drop(queue.lock()?);
        Ok(queue)
    }

    /// Opens the queue a `file://` URL names: `file:///abs/dir` (absolute)
    /// or `file://rel/dir` (relative to the working directory, as
    /// `sqlite://outband.db` is). The path is taken as written: no
    /// percent-decoding, no host, no query parameters.
    pub fn open_url(url: &str) -> Result<Self, Error> {
        let path = url
            .strip_prefix("file://")
            .filter(|path| !path.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "`{url}` is not a file queue URL: expected file:///path/to/dir"
                ))
            })?;
        if path.contains('?') {
            return Err(Error::Config(format!(
                "`{url}`: file queue URLs take no query parameters"
            )));
        }
        Self::open(path)
    }

    /// The directory this queue keeps its jobs in.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Takes the directory's lock, waiting for other threads and processes.
    /// Every operation on job files goes through the [`Store`] this returns,
    /// and holds the lock until it drops it.
    fn lock(&self) -> Result<Store<'_>, Error> {
        Store::lock(&self.root, &self.inner)
    }

    /// The file whose presence pauses `queue`.
    fn paused_marker(&self, queue: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join(PAUSED).join(escape(queue)?))
    }

    /// What a claim of one job would find in `queue` at `now`; `None` while
    /// the queue is paused. Nothing is written.
    fn scan(&self, queue: &str, now: u64) -> Result<Option<Scan>, Error> {
        let mut store = self.lock()?;
        if self.is_paused(queue)? {
            return Ok(None);
        }
        ready(&mut store, queue, now, 1).map(Some)
    }

    fn is_paused(&self, queue: &str) -> Result<bool, Error> {
        let path = self.paused_marker(queue)?;
        path.try_exists().map_err(io_error(&path))
    }
}

/// What [`ready`] found.
struct Scan {
    /// The jobs a claim may take now, best first.
    ready: Vec<Record>,
    /// When the first job passed over for its rate limit may start, in
    /// nanoseconds.
    next_turn: Option<u64>,
    /// The rate keys' times with the starts of `ready` counted, if a rate
    /// limit was looked at: a claim that takes `ready` writes them.
    rates: Option<HashMap<String, u64>>,
}

/// The pending jobs of `queue` that a claim may take now, best first, at
/// most `max`: due, first in line for their ordering key while no job with
/// that key runs, under their concurrency limit (counting the jobs of their
/// limit's key running in every queue and those taken before them), and
/// with their rate limit's turn come (`outband::RateLimit::admit`, counting
/// the starts before them). Sorted by priority (highest first), then id
/// (enqueue order); a job over a limit is passed over, not waited on.
///
/// Only the directory listings and the cached [`Facts`](store::Facts) are
/// needed to order the candidates; a candidate's file is read to see whether
/// it is due, so a claim reads the jobs it takes plus the scheduled ones that
/// sort before them.
fn ready(store: &mut Store<'_>, queue: &str, now: u64, max: usize) -> Result<Scan, Error> {
    let (pending, running) = store.live_ids(queue)?;
    let has = |pick: fn(&store::Facts) -> bool| {
        pending.iter().any(|id| store.facts(*id).is_some_and(pick))
    };
    let (limited, rated) = (has(|f| f.concurrency.is_some()), has(|f| f.rate.is_some()));
    let mut slots = if limited {
        store.running_by_limit()?
    } else {
        HashMap::new()
    };
    let mut rates = if rated { Some(store.rates()?) } else { None };
    let key_of = |id: &JobId| store.facts(*id).and_then(|facts| facts.key.as_deref());
    let owned: HashSet<&str> = running.iter().filter_map(key_of).collect();
    // The head of each key's line is its pending job with the lowest id,
    // due or not: a scheduled or retried job keeps its place. `pending` is
    // in id order, so the first job seen with a key is its head.
    let mut heads: HashMap<&str, JobId> = HashMap::new();
    for id in &pending {
        if let Some(key) = key_of(id) {
            heads.entry(key).or_insert(*id);
        }
    }
    let mut candidates: Vec<(Reverse<i16>, JobId)> = pending
        .iter()
        .filter(|id| match key_of(id) {
            None => true,
            Some(key) => !owned.contains(key) && heads.get(key) == Some(*id),
        })
        .filter_map(|id| Some((Reverse(store.facts(*id)?.priority), *id)))
        .collect();
    candidates.sort_unstable();
    let mut scan = Scan {
        ready: Vec::new(),
        next_turn: None,
        rates: None,
    };
    for (_, id) in candidates {
        if scan.ready.len() >= max {
            break;
        }
        if let Some((key, limit)) = store.facts(id).and_then(|f| f.concurrency.clone())
            && slots.get(&key).copied().unwrap_or(0) >= limit
        {
            continue;
        }
        let Some(record) = store.read(queue, JobState::Pending, id)? else {
            continue;
        };
        if record.run_at > now {
            continue;
        }
        if let (Some(rate), Some(rates)) = (record.rate_limit(), rates.as_mut()) {
            let tat = rates.get(&rate.key).copied().map(to_time);
            match rate.admit(tat, to_time(now)) {
                Ok(tat) => {
                    rates.insert(rate.key, from_time(tat));
                }
                Err(turn) => {
                    let turn = from_time(turn);
                    scan.next_turn = Some(scan.next_turn.map_or(turn, |next| next.min(turn)));
                    continue;
                }
            }
        }
        if let Some((key, _)) = &record.concurrency {
            *slots.entry(key.clone()).or_insert(0) += 1;
        }
        scan.ready.push(record);
    }
    scan.rates = rates;
    Ok(scan)
}

/// Finds the job held under `lease`: its record, if it is `running` under
/// that very token.
fn leased(store: &Store<'_>, lease: &Lease) -> Result<Option<Record>, Error> {
    Ok(match store.find(lease.job)? {
        Some((record, JobState::Running))
            if record.lease.is_some_and(|held| held.token == lease.token) =>
        {
            Some(record)
        }
        _ => None,
    })
}

/// Rewrites a job's record in its current directory, then moves it to
/// `to`: the order that keeps a crash between the two harmless.
fn transition(
    store: &Store<'_>,
    record: &Record,
    from: JobState,
    to: JobState,
) -> Result<(), Error> {
    let id = JobId(record.id);
    store.write(&store.path(&record.queue, from, id)?, record)?;
    if from != to {
        store.move_to(&record.queue, id, from, to)?;
    }
    Ok(())
}

impl BaseQueue for FileQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        // All or none: every job is checked before anything is written, by
        // outband's rules and then by this backend's (names as file names).
        fate::validate_batch(&jobs)?;
        for job in &jobs {
            escape(&job.queue)?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = SystemTime::now();
        let mut store = self.lock()?;
        let first = store.take_ids(jobs.len() as u64)?;
        let records: Vec<Record> = (first..)
            .zip(jobs)
            .map(|(id, job)| Record::of(&fate::new_job(job, JobId(id), now), None))
            .collect();
        let batch = store.commit_batch(&records)?;
        // Committed: the jobs exist. Filing them into their queues can only
        // fail on I/O, and then the next lock holder files them.
        if let Err(error) = store.file_batch(&batch) {
            log::warn!("batch committed, filing postponed: {error}");
        }
        Ok(records.iter().map(|record| JobId(record.id)).collect())
    }

    fn enqueue_unique(&self, job: NewJob) -> Result<Enqueued, Error> {
        let Some(unique) = fate::validate_unique(&job)?.cloned() else {
            return self.enqueue(job).map(Enqueued::new);
        };
        let now = SystemTime::now();
        // one lock for the look at the holder and the store
        let mut store = self.lock()?;
        let mut keys = store.unique_keys()?;
        if let Some(&holder) = keys.get(&unique.key)
            && let Some((record, state)) = store.find(JobId(holder))?
            && unique
                .until
                .holds(state, record.finished_at.map(to_time), now)
        {
            return Ok(Enqueued::duplicate_of(JobId(holder)));
        }
        let id = store.take_ids(1)?;
        // The key is written before the job: a crash between the two leaves
        // a key naming no job, which is free.
        keys.insert(unique.key, id);
        store.write_unique_keys(&keys)?;
        let record = Record::of(&fate::new_job(job, JobId(id), now), None);
        let batch = store.commit_batch(std::slice::from_ref(&record))?;
        if let Err(error) = store.file_batch(&batch) {
            log::warn!("batch committed, filing postponed: {error}");
        }
        Ok(Enqueued::new(JobId(id)))
    }

    fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error> {
        let now = SystemTime::now();
        let deadline = now + lease;
        let mut store = self.lock()?;
        // Under the lock, so a pause holds from the next claim of any
        // process.
        if self.is_paused(queue)? {
            return Ok(Vec::new());
        }
        let Scan { ready, rates, .. } = ready(&mut store, queue, from_time(now), max)?;
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(rates) = rates
            && ready.iter().any(|record| record.rate.is_some())
        {
            store.write_rates(&rates)?;
        }
        let first_token = store.take_tokens(ready.len() as u64)?;
        let mut claimed = Vec::with_capacity(ready.len());
        for (token, mut record) in (first_token..).zip(ready) {
            record.attempt += 1;
            record.started_at = Some(from_time(now));
            record.progress = None;
            record.lease = Some(LeaseRecord {
                token,
                deadline: from_time(deadline),
            });
            // The rename from pending/ to running/ is the claim.
            transition(&store, &record, JobState::Pending, JobState::Running)?;
            claimed.push(Claimed {
                job: record.to_job(JobState::Running).map_err(Error::backend)?,
                lease: Lease {
                    job: JobId(record.id),
                    token,
                    deadline,
                },
            });
        }
        Ok(claimed)
    }

    fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), Error> {
        // No push mechanism: return at once if a job is ready, else poll,
        // waking when a job passed over for its rate may start.
        let now = SystemTime::now();
        let mut timeout = timeout;
        for queue in queues {
            let Some(scan) = self.scan(queue, from_time(now))? else {
                continue;
            };
            if !scan.ready.is_empty() {
                return Ok(());
            }
            if let Some(turn) = scan.next_turn {
                timeout = timeout.min(to_time(turn).duration_since(now).unwrap_or_default());
            }
        }
        std::thread::sleep(timeout);
        Ok(())
    }

    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error> {
        let now = from_time(SystemTime::now());
        Ok(self
            .scan(queue, now)?
            .is_some_and(|scan| !scan.ready.is_empty()))
    }

    fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, Error> {
        let deadline = SystemTime::now() + lease_for;
        let store = &self.lock()?;
        let Some(mut record) = leased(store, lease)? else {
            return Ok(Heartbeat::LeaseLost);
        };
        record.lease = Some(LeaseRecord {
            token: lease.token,
            deadline: from_time(deadline),
        });
        // The cancel request stays in the record: every heartbeat until the
        // attempt ends tells the worker again.
        transition(store, &record, JobState::Running, JobState::Running)?;
        Ok(if record.cancel.is_some() {
            Heartbeat::CancelRequested(deadline)
        } else {
            Heartbeat::Extended(deadline)
        })
    }

    fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, Error> {
        let store = &self.lock()?;
        let Some(mut record) = leased(store, lease)? else {
            return Ok(Completion::LeaseLost);
        };
        record.progress = Some((progress.fraction, progress.note.clone()));
        transition(store, &record, JobState::Running, JobState::Running)?;
        Ok(Completion::Applied)
    }

    fn complete(&self, lease: &Lease, outcome: Outcome) -> Result<Completion, Error> {
        let now = SystemTime::now();
        let mut store = self.lock()?;
        // Fencing: only the holder of this very token may record an outcome.
        let Some(record) = leased(&store, lease)? else {
            return Ok(Completion::LeaseLost);
        };
        // What the outcome makes of the job is outband's rule, and so is
        // what a cancel requested while it ran makes of it: an attempt that
        // would run again ends it `cancelled` instead. The lease and the
        // request go.
        let mut job = record.to_job(JobState::Running).map_err(Error::backend)?;
        let to = match record.cancel {
            Some(reason) if fate::ends_cancelled(&outcome) => {
                fate::cancel(&mut job, &reason, now);
                JobState::Cancelled
            }
            _ => fate::apply(&mut job, outcome, now),
        };
        // A job leaving `running` frees its ordering key by itself: `ready`
        // looks at running and pending files only.
        transition(&store, &Record::of(&job, None), JobState::Running, to)?;
        if to.is_finished() {
            store.forget(lease.job);
        }
        Ok(Completion::Applied)
    }

    fn recover_expired(&self) -> Result<Recovered, Error> {
        let now = SystemTime::now();
        let mut store = self.lock()?;
        let mut recovered = Recovered::default();
        let mut live = HashSet::new();
        for queue in store.queue_names()? {
            for record in store.records(&queue, JobState::Running)? {
                if record.deadline() > from_time(now) {
                    continue;
                }
                let mut job = record.to_job(JobState::Running).map_err(Error::backend)?;
                // A job cancelled while it ran is not run again: it ends
                // `cancelled`, and is neither requeued nor dead.
                if let Some(reason) = &record.cancel {
                    fate::cancel(&mut job, reason, now);
                    let cancelled = Record::of(&job, None);
                    transition(&store, &cancelled, JobState::Running, JobState::Cancelled)?;
                    continue;
                }
                // Requeue or dead, and the reason, are outband's rule.
                let decision = fate::expire(&mut job, now);
                let record = Record::of(&job, None);
                transition(&store, &record, JobState::Running, decision.state())?;
                match decision {
                    fate::Expired::Requeue { .. } => recovered.requeued += 1,
                    fate::Expired::Dead { .. } => recovered.dead += 1,
                }
            }
            live.extend(store.ids(&queue, JobState::Pending)?);
            live.extend(store.ids(&queue, JobState::Running)?);
        }
        // The manager step also trims the facts cache of jobs that other
        // processes finished.
        store.forget_all_but(&live);
        Ok(recovered)
    }

    fn len(&self, queue: &str) -> Result<u64, Error> {
        let store = self.lock()?;
        Ok(store.ids(queue, JobState::Pending)?.len() as u64)
    }

    fn flush(&self, queue: &str) -> Result<u64, Error> {
        let mut store = self.lock()?;
        let pending = store.ids(queue, JobState::Pending)?;
        for &id in &pending {
            store.remove(queue, JobState::Pending, id)?;
            store.forget(id);
        }
        Ok(pending.len() as u64)
    }

    fn stats(&self, queue: &str) -> Result<QueueStats, Error> {
        let now = SystemTime::now();
        let store = &self.lock()?;
        let count = |state| store.ids(queue, state).map(|ids| ids.len() as u64);
        let mut stats = QueueStats::default();
        stats.pending = count(JobState::Pending)?;
        stats.running = count(JobState::Running)?;
        stats.dead = count(JobState::Dead)?;
        stats.cancelled = count(JobState::Cancelled)?;
        let since = from_time(now - THROUGHPUT_WINDOW);
        let done = store.records(queue, JobState::Done)?;
        stats.done = done.len() as u64;
        let in_window = done
            .iter()
            .filter(|record| record.finished_at.is_some_and(|at| at >= since))
            .count() as u64;
        let run_times = done
            .iter()
            .filter_map(|record| record.duration.map(Duration::from_nanos))
            .collect();
        fill_run_times(&mut stats, run_times, in_window);
        stats.paused = self.is_paused(queue)?;
        Ok(stats)
    }

    fn queues(&self) -> Result<Vec<String>, Error> {
        let store = &self.lock()?;
        let mut names = Vec::new();
        for queue in store.queue_names()? {
            let mut has_jobs = false;
            for state in JobState::ALL {
                has_jobs = has_jobs || !store.ids(&queue, state)?.is_empty();
            }
            if has_jobs {
                names.push(queue);
            }
        }
        Ok(names)
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        let store = self.lock()?;
        match store.find(id)? {
            Some((record, state)) => record.to_job(state).map(Some).map_err(Error::backend),
            None => Ok(None),
        }
    }

    /// Lists the state's directory (every name, as `dead_jobs` does) and
    /// reads the files of the page, newest first, and no more than
    /// [`JobQuery::SCAN`] others when a command filter skips them.
    fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let store = self.lock()?;
        let ids = store.ids(&query.queue, query.state)?;
        let size = query.page_size();
        let mut jobs = Vec::new();
        let mut examined = 0;
        for &id in ids.iter().rev() {
            if query.before.is_some_and(|before| id >= before) {
                continue;
            }
            if jobs.len() == size || examined == size + JobQuery::SCAN {
                return Ok(JobPage::new(jobs, Some(JobId(id.0 + 1))));
            }
            examined += 1;
            // a file renamed away since the directory was listed is skipped
            let Some(record) = store.read(&query.queue, query.state, id)? else {
                continue;
            };
            let job = record.to_job(query.state).map_err(Error::backend)?;
            if query.matches(&job) {
                jobs.push(job);
            }
        }
        Ok(JobPage::new(jobs, None))
    }

    fn dead_jobs(&self, queue: &str, offset: usize, limit: usize) -> Result<Vec<Job>, Error> {
        let store = self.lock()?;
        let mut dead = store.records(queue, JobState::Dead)?;
        dead.sort_unstable_by_key(|record| Reverse((record.finished_at, record.id)));
        dead.iter()
            .skip(offset)
            .take(limit)
            .map(|record| record.to_job(JobState::Dead).map_err(Error::backend))
            .collect()
    }

    fn retry_dead(&self, id: JobId) -> Result<bool, Error> {
        let now = from_time(SystemTime::now());
        let store = &self.lock()?;
        let Some((mut record, JobState::Dead)) = store.find(id)? else {
            return Ok(false);
        };
        record.attempt = 0;
        record.run_at = now;
        record.finished_at = None;
        transition(store, &record, JobState::Dead, JobState::Pending)?;
        Ok(true)
    }

    fn delete_dead(&self, id: JobId) -> Result<bool, Error> {
        let mut store = self.lock()?;
        let Some((record, JobState::Dead)) = store.find(id)? else {
            return Ok(false);
        };
        store.remove(&record.queue, JobState::Dead, id)?;
        store.forget(id);
        Ok(true)
    }

    fn cancel(&self, id: JobId, reason: &str) -> Result<Cancellation, Error> {
        let now = SystemTime::now();
        let mut store = self.lock()?;
        let Some((mut record, state)) = store.find(id)? else {
            return Ok(Cancellation::NotFound);
        };
        match state {
            JobState::Pending => {
                // Cancelled now, by outband's rule: when and why are kept.
                let mut job = record.to_job(JobState::Pending).map_err(Error::backend)?;
                fate::cancel(&mut job, reason, now);
                let cancelled = Record::of(&job, None);
                transition(&store, &cancelled, JobState::Pending, JobState::Cancelled)?;
                // The key's next job becomes the head of the line by itself.
                store.forget(id);
                Ok(Cancellation::Cancelled)
            }
            JobState::Running => {
                // Its worker may be half way through: only mark it, in its
                // record, for the heartbeats to tell and the end of the
                // attempt to act on. The first request's reason stands.
                if record.cancel.is_none() {
                    record.cancel = Some(reason.to_owned());
                    transition(&store, &record, JobState::Running, JobState::Running)?;
                }
                Ok(Cancellation::Requested)
            }
            finished => Ok(Cancellation::Finished(finished)),
        }
    }

    fn purge(&self, older_than: Duration) -> Result<u64, Error> {
        let now = SystemTime::now();
        let cutoff = from_time(
            now.checked_sub(older_than)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let store = &self.lock()?;
        let mut purged = 0;
        // `done` and `cancelled` are final and only a purge deletes them;
        // `dead` jobs wait for an operator.
        for queue in store.queue_names()? {
            for state in [JobState::Done, JobState::Cancelled] {
                for record in store.records(&queue, state)? {
                    if record.finished_at.is_some_and(|at| at <= cutoff) {
                        store.remove(&queue, state, JobId(record.id))?;
                        purged += 1;
                    }
                }
            }
        }
        purge_ticks(&store.root().join(TICKS), cutoff)?;
        // a key whose job is gone is free: forget it
        let mut keys = store.unique_keys()?;
        let before = keys.len();
        let mut kept = HashMap::with_capacity(before);
        for (key, id) in keys.drain() {
            if store.find(JobId(id))?.is_some() {
                kept.insert(key, id);
            }
        }
        if kept.len() < before {
            store.write_unique_keys(&kept)?;
        }
        Ok(purged)
    }

    fn pause(&self, queue: &str) -> Result<bool, Error> {
        let path = self.paused_marker(queue)?;
        let _store = self.lock()?;
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {
                // the pause survives a power loss
                sync_dir(&self.root.join(PAUSED))?;
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    fn resume(&self, queue: &str) -> Result<bool, Error> {
        let path = self.paused_marker(queue)?;
        let _store = self.lock()?;
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.root.join(PAUSED))?;
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    fn paused(&self) -> Result<Vec<String>, Error> {
        store::escaped_names(&self.root.join(PAUSED))
    }

    fn claim_tick(&self, name: &str, tick: SystemTime) -> Result<bool, Error> {
        // No lock needed: creating a file that must not exist is atomic
        // (O_EXCL), so exactly one caller per (name, tick) succeeds.
        let dir = self.root.join(TICKS).join(escape(name)?);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join(from_time(tick).to_string());
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    /// The largest of the command's tick files' names.
    fn last_tick(&self, name: &str) -> Result<Option<SystemTime>, Error> {
        let dir = self.root.join(TICKS).join(escape(name)?);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&dir)(error)),
        };
        let mut last = None;
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            let tick = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok());
            last = last.max(tick);
        }
        Ok(last.map(to_time))
    }

    /// Rewrites `consumers.json` under the lock, leaving out the consumers
    /// gone for [`outband::CONSUMER_FORGET_AFTER`].
    fn register_consumer(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> {
        let store = self.lock()?;
        let now = SystemTime::now();
        let mut consumers = store.consumers()?;
        consumers.retain(|_, record| !Consumer::forgotten(to_time(record.expires_at), now));
        let seen_at = from_time(now);
        consumers.insert(
            info.id.clone(),
            ConsumerRecord {
                info: info.clone(),
                seen_at,
                expires_at: seen_at.saturating_add(from_duration(ttl)),
            },
        );
        store.write_consumers(&consumers)
    }

    fn unregister_consumer(&self, id: &str) -> Result<(), Error> {
        let store = self.lock()?;
        let mut consumers = store.consumers()?;
        if consumers.remove(id).is_some() {
            store.write_consumers(&consumers)?;
        }
        Ok(())
    }

    fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        let consumers = self.lock()?.consumers()?;
        let now = SystemTime::now();
        let mut listed: Vec<Consumer> = consumers
            .into_values()
            .filter(|record| !Consumer::forgotten(to_time(record.expires_at), now))
            .map(|record| {
                Consumer::at(
                    record.info,
                    to_time(record.seen_at),
                    to_time(record.expires_at),
                    now,
                )
            })
            .collect();
        Consumer::sort(&mut listed);
        Ok(listed)
    }

    /// Claims count the running jobs of each limited job's key in every
    /// queue, and keep each rate key's time in `rates.json`, under the
    /// store's lock, so the limits hold across processes. The consumer
    /// registry is `consumers.json`.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .concurrency_limits(true)
            .rate_limits(true)
            .consumer_registry(true)
    }

    fn now(&self) -> Result<SystemTime, Error> {
        Ok(SystemTime::now())
    }
}

/// Deletes the tick files of ticks at or before `cutoff`: consumers only
/// ever claim current ticks, so old ones are never asked about again.
fn purge_ticks(ticks: &Path, cutoff: u64) -> Result<(), Error> {
    for command in fs::read_dir(ticks).map_err(io_error(ticks))? {
        let dir = command.map_err(io_error(ticks))?.path();
        for tick in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let path = tick.map_err(io_error(&dir))?.path();
            let at: Option<u64> = path.file_name().and_then(|n| n.to_str()?.parse().ok());
            if at.is_some_and(|at| at <= cutoff) {
                fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
    }
    Ok(())
}

/// Opens a `file://` URL for [`outband::open`].
fn open_url(url: &str) -> Result<Arc<dyn BaseQueue>, Error> {
    Ok(Arc::new(FileQueue::open_url(url)?))
}

// Registers the scheme: any program that links this crate (`use
// custom_backend as _;` is enough) opens `file://` URLs with
// `outband::open`, `OUTBAND_URL` and the daemon's `--url`.
outband::register_scheme!(SCHEME, open_url);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("q").display());
        assert_eq!(
            FileQueue::open_url(&url).unwrap().dir(),
            dir.path().join("q")
        );
        for bad in ["file://", "sqlite://x.db", "file:///tmp/q?x=1"] {
            assert!(
                matches!(FileQueue::open_url(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }
}
