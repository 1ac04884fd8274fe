//! The job model: what a producer hands to a queue, what a consumer gets back.
//!
//! A job is one call of a registered command. [`NewJob`] is what a producer
//! builds; [`Job`] is the stored record with its envelope; [`Claimed`] is a job
//! together with the [`Lease`] under which one worker may run it.
//!
//! ```text
//!   enqueue ──▶ pending ──claim──▶ running ──done──▶ done ──purge──▶ (gone)
//!                  ▲                  │
//!                  └──retry/release───┤
//!                                     └──dead──▶ dead ──retry──▶ pending
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

/// The identifier a backend gives a job when it stores it.
///
/// Identifiers are unique within one backend and never reused while the job's
/// record exists.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a job is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to run: ready now, or scheduled for its `run_at`, or waiting
    /// behind an earlier job with the same ordering key.
    Pending,
    /// Leased to one worker until its lease deadline.
    Running,
    /// Finished successfully; kept with its timings and result until purged.
    Done,
    /// The dead-letter state: attempts spent, or the job can never run (its
    /// arguments cannot be decoded). Kept until an operator retries or deletes it.
    Dead,
    /// Cancelled by [`cancel`](crate::BaseQueue::cancel): it will not run
    /// (again). `finished_at` says when and `last_error` why; kept, like a
    /// done job, until purged.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        Self::Pending,
        Self::Running,
        Self::Done,
        Self::Dead,
        Self::Cancelled,
    ];

    /// The state's name as stored and printed: `pending`, `running`, `done`,
    /// `dead`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether a job in this state has finished: `done`, `dead` or
    /// `cancelled`.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Dead | Self::Cancelled)
    }

    /// Parses a name written by [`JobState::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a new job becomes ready.
///
/// [`When::After`] is measured on the backend's clock when the job is stored,
/// so producers with skewed clocks still agree with consumers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// Ready at once.
    #[default]
    Now,
    /// Ready at this wall-clock time (at once if it has passed).
    At(SystemTime),
    /// Ready this long after the backend stores it.
    After(Duration),
}

impl When {
    /// The time this resolves to, given the backend's current time.
    pub fn resolve(self, now: SystemTime) -> SystemTime {
        match self {
            Self::Now => now,
            Self::At(at) => at,
            Self::After(delay) => now + delay,
        }
    }
}

impl From<SystemTime> for When {
    fn from(at: SystemTime) -> Self {
        Self::At(at)
    }
}

impl From<Duration> for When {
    fn from(delay: Duration) -> Self {
        Self::After(delay)
    }
}

/// The queue a job goes to when its command names none.
pub const DEFAULT_QUEUE: &str = "default";

/// Attempts a job gets when its command sets no `retries`: the first run and
/// three retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// A job as a producer hands it to [`BaseQueue::enqueue`](crate::BaseQueue::enqueue).
///
/// `#[queue_command]` builds these for you; build one by hand to enqueue a
/// command by name, for instance from another language's producer.
///
/// ```
/// use outband::{NewJob, When};
/// use std::time::Duration;
///
/// let job = NewJob::new("app::send_welcome", outband::codec::encode(&(7u64, "hi"))?)
///     .queue("emails")
///     .key("7")
///     .priority(10)
///     .max_attempts(6)
///     .when(When::After(Duration::from_secs(300)));
/// assert_eq!(job.queue, "emails");
/// # Ok::<(), outband::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The registered name of the command to run.
    pub command: String,
    /// The command's arguments, encoded with [`codec::encode`](crate::codec::encode).
    pub args: Vec<u8>,
    /// The queue's name.
    pub queue: String,
    /// The ordering key: jobs with the same key never run at the same time and
    /// run in enqueue order.
    pub key: Option<String>,
    /// Higher runs first; jobs of equal priority run in enqueue order.
    pub priority: i16,
    /// How many times the job may be started before it goes to `dead`; at least 1.
    pub max_attempts: u32,
    /// When the job becomes ready.
    pub when: When,
    /// How long one attempt may run, replacing the command's `timeout`;
    /// `None` keeps the command's. Kept to the millisecond.
    pub timeout: Option<Duration>,
    /// The job's unique key, if it has one: it is then enqueued with
    /// [`enqueue_unique`](crate::BaseQueue::enqueue_unique), alone.
    pub unique: Option<crate::Unique>,
    /// The job's concurrency limit, if it has one: see
    /// [`Concurrency`](crate::Concurrency).
    pub concurrency: Option<crate::Concurrency>,
    /// The job's rate limit, if it has one: see
    /// [`RateLimit`](crate::RateLimit).
    pub rate: Option<crate::RateLimit>,
}

impl NewJob {
    /// A job for `command` with encoded `args` on the default queue, ready now,
    /// with priority 0, no ordering key and [`DEFAULT_MAX_ATTEMPTS`].
    pub fn new(command: impl Into<String>, args: Vec<u8>) -> Self {
        Self {
            command: command.into(),
            args,
            queue: DEFAULT_QUEUE.to_owned(),
            key: None,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            when: When::Now,
            timeout: None,
            unique: None,
            concurrency: None,
            rate: None,
        }
    }

    /// Makes the job unique by `unique`'s key: see
    /// [`enqueue_unique`](crate::BaseQueue::enqueue_unique).
    #[must_use]
    pub fn unique(mut self, unique: crate::Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Limits how many jobs holding `concurrency`'s key run at once: see
    /// [`Concurrency`](crate::Concurrency).
    #[must_use]
    pub fn concurrency(mut self, concurrency: crate::Concurrency) -> Self {
        self.concurrency = Some(concurrency);
        self
    }

    /// Limits how many jobs holding `rate`'s key start per period: see
    /// [`RateLimit`](crate::RateLimit).
    #[must_use]
    pub fn rate(mut self, rate: crate::RateLimit) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Sets the queue.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets the ordering key.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the priority; higher runs first.
    #[must_use]
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets how many times the job may be started.
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets when the job becomes ready.
    #[must_use]
    pub fn when(mut self, when: impl Into<When>) -> Self {
        self.when = when.into();
        self
    }

    /// Sets how long one attempt may run, in place of the command's
    /// `timeout`: see [`Job::timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks what every backend refuses to store: an empty command or queue
    /// name, `max_attempts` of 0, a timeout under a millisecond, an empty
    /// unique key or one over [`MAX_UNIQUE_KEY`](crate::MAX_UNIQUE_KEY)
    /// bytes, or arguments over the payload limit.
    ///
    /// Backends call this from `enqueue` so that a bad job is an error for the
    /// producer, not a surprise for the consumer.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if self.command.is_empty() {
            return Err(crate::Error::InvalidJob("the command name is empty".into()));
        }
        if self.queue.is_empty() {
            return Err(crate::Error::InvalidJob("the queue name is empty".into()));
        }
        if self.max_attempts == 0 {
            return Err(crate::Error::InvalidJob(
                "max_attempts is 0: a job needs at least one attempt".into(),
            ));
        }
        if self
            .timeout
            .is_some_and(|timeout| timeout < Duration::from_millis(1))
        {
            return Err(crate::Error::InvalidJob(
                "the timeout is under a millisecond: an attempt would time out at once".into(),
            ));
        }
        if let Some(unique) = &self.unique
            && (unique.key.is_empty() || unique.key.len() > crate::MAX_UNIQUE_KEY)
        {
            return Err(crate::Error::InvalidJob(format!(
                "the unique key is {} bytes: it must be 1 to {}",
                unique.key.len(),
                crate::MAX_UNIQUE_KEY
            )));
        }
        if let Some(concurrency) = &self.concurrency {
            concurrency.validate()?;
        }
        if let Some(rate) = &self.rate {
            rate.validate()?;
        }
        crate::codec::check_size(self.args.len())?;
        Ok(())
    }
}

/// A stored job: the command, its arguments and the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// The backend's identifier.
    pub id: JobId,
    /// The registered name of the command to run.
    pub command: String,
    /// The encoded arguments.
    pub args: Vec<u8>,
    /// The queue's name.
    pub queue: String,
    /// The ordering key, if any.
    pub key: Option<String>,
    /// Higher runs first.
    pub priority: i16,
    /// Attempts started so far, counting the one running now.
    pub attempt: u32,
    /// Attempts allowed before the job goes to `dead`.
    pub max_attempts: u32,
    /// The state.
    pub state: JobState,
    /// When the job becomes (or became) ready.
    pub run_at: SystemTime,
    /// When the job was stored.
    pub enqueued_at: SystemTime,
    /// When the latest attempt started.
    pub started_at: Option<SystemTime>,
    /// When the job reached `done` or `dead`.
    pub finished_at: Option<SystemTime>,
    /// How long the successful attempt ran, as the worker measured it.
    pub duration: Option<Duration>,
    /// The error of the latest failed attempt.
    pub last_error: Option<String>,
    /// The command's encoded return value, once done, if it returns one.
    pub result: Option<Vec<u8>>,
    /// How far the latest attempt said it got, through
    /// [`JobContext::progress`](crate::JobContext::progress): cleared when
    /// an attempt starts, kept once the job is done or dead.
    pub progress: Option<Progress>,
    /// How long one attempt may run, as the job was enqueued with it
    /// ([`NewJob::timeout`]); `None` leaves it to the command's `timeout`
    /// (`#[queue_command(timeout = "30s")]`), and without either an
    /// attempt runs as long as it takes.
    ///
    /// A timeout counts from the attempt's start, on the consumer's clock,
    /// and guarantees this much:
    ///
    /// - An **async** command's future is dropped at the deadline; the
    ///   attempt fails with `timed out after …`, and the job is retried or
    ///   dead by the usual rules.
    /// - A **sync** command cannot be stopped from outside its thread. At
    ///   the deadline its [`JobContext`](crate::JobContext) turns
    ///   cancelled; if it returns within the processor's
    ///   [`timeout_grace`](crate::ProcessorConfig::timeout_grace) after
    ///   that, its outcome stands. If it does not, the attempt is recorded
    ///   as failed (`timed out after …`, retried or dead by the usual
    ///   rules) within a second after the grace, and its thread stays busy,
    ///   running nothing else, until the command returns, whose outcome is
    ///   then discarded; so the thread cap holds, and a retry may start
    ///   elsewhere while the overrunning call still runs.
    /// - A job run step by step ([`Processor::process`](crate::Processor::process)
    ///   without [`start`](crate::Processor::start)) gets the deadline and
    ///   the async drop, not the sync grace; eager mode enforces no timeout.
    pub timeout: Option<Duration>,
    /// The job's concurrency limit, if it was enqueued with one (a backend
    /// that does not keep it gives `None`).
    pub concurrency: Option<crate::Concurrency>,
    /// The job's rate limit, if it was enqueued with one (a backend that
    /// does not keep it gives `None`).
    pub rate: Option<crate::RateLimit>,
}

impl Job {
    /// A job as a backend reads it back: `id`, `command` and `args`, in
    /// queue [`DEFAULT_QUEUE`], `pending` since the Unix epoch, with no
    /// attempt yet of [`DEFAULT_MAX_ATTEMPTS`]; the backend then sets each
    /// field it stores. (The struct is `#[non_exhaustive]`: fields added
    /// later get a default here, and a backend written today still builds.)
    pub fn new(id: JobId, command: impl Into<String>, args: Vec<u8>) -> Self {
        Self {
            id,
            command: command.into(),
            args,
            queue: DEFAULT_QUEUE.to_owned(),
            key: None,
            priority: 0,
            attempt: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            state: JobState::Pending,
            run_at: SystemTime::UNIX_EPOCH,
            enqueued_at: SystemTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
            duration: None,
            last_error: None,
            result: None,
            progress: None,
            timeout: None,
            concurrency: None,
            rate: None,
        }
    }

    /// Decodes the stored result as `T`; `None` when there is none (yet).
    pub fn result<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Option<Result<T, crate::codec::CodecError>> {
        self.result.as_deref().map(crate::codec::decode)
    }

    /// Whether another failed attempt would still be retried.
    pub fn has_attempts_left(&self) -> bool {
        self.attempt < self.max_attempts
    }
}

/// How far a running job got, as its command reports it: a fraction done
/// and a note. Built with [`Progress::new`], which keeps both in bounds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// From 0.0 (nothing done) to 1.0 (all of it).
    pub fraction: f32,
    /// What the command says it is doing; at most
    /// [`Progress::MAX_NOTE`] bytes.
    pub note: String,
}

impl Eq for Progress {}

impl Progress {
    /// The longest note kept, in bytes; a longer one is cut at a character
    /// boundary.
    pub const MAX_NOTE: usize = 1024;

    /// A progress report: `fraction` is clamped to `0.0..=1.0` (a NaN is
    /// 0.0), and `note` is cut to [`MAX_NOTE`](Self::MAX_NOTE) bytes.
    pub fn new(fraction: f32, note: impl Into<String>) -> Self {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let mut note = note.into();
        if note.len() > Self::MAX_NOTE {
            let mut end = Self::MAX_NOTE;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
        Self { fraction, note }
    }
}

/// The right to run one job, given by a claim.
///
/// The token fences the lease: [`heartbeat`](crate::BaseQueue::heartbeat) and
/// [`complete`](crate::BaseQueue::complete) succeed only while the job is still
/// held under this token, so a worker that stalled past its deadline can never
/// overwrite the work of the worker that took the job over.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// The fencing token, new on every claim.
    pub token: u64,
    /// When the lease runs out, on the backend's clock.
    pub deadline: SystemTime,
}

/// A job handed to one worker, with its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The job, in state `running`, its `attempt` already counting this run.
    pub job: Job,
    /// The lease under which the worker holds it.
    pub lease: Lease,
}

/// How an attempt ended, as a worker reports it to
/// [`complete`](crate::BaseQueue::complete).
///
/// Outcomes may grow: a backend meets one it does not know by sending the
/// job to `dead` with the outcome in the reason, so that nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The command succeeded: the job goes to `done`.
    Done {
        /// The encoded return value, if the command returns one.
        result: Option<Vec<u8>>,
        /// How long the command ran.
        duration: Duration,
    },
    /// The attempt failed and attempts are left: the job goes back to
    /// `pending`, ready after `delay` on the backend's clock.
    Retry {
        /// Backoff before the next attempt.
        delay: Duration,
        /// Why the attempt failed.
        error: String,
    },
    /// The job cannot or may not run again: it goes to `dead`.
    Dead {
        /// Why.
        error: String,
    },
    /// The worker gives the job back unrun (a consumer shutting down): it goes
    /// back to `pending`, ready at once, and the attempt is not counted.
    Release,
}

/// What [`complete`](crate::BaseQueue::complete) did with an outcome.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The job was completed.
    Applied,
    /// The lease had been lost (expired and recovered, or the job was claimed
    /// again): nothing changed.
    LeaseLost,
}

/// What [`heartbeat`](crate::BaseQueue::heartbeat) did with a lease.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Heartbeat {
    /// The lease now runs until this deadline.
    Extended(SystemTime),
    /// The lease now runs until this deadline, and the job was cancelled
    /// while it ran: the worker should stop it. Whatever the attempt then
    /// ends with, short of `done` or `dead`, makes the job `cancelled`.
    CancelRequested(SystemTime),
    /// The lease had been lost: the worker no longer owns the job.
    LeaseLost,
}

/// What [`cancel`](crate::BaseQueue::cancel) did with a job.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancellation {
    /// The job was `pending` (ready, scheduled, or waiting behind its
    /// ordering key): it is `cancelled` now, and will never run.
    Cancelled,
    /// The job is `running`: its worker learns of it at once where the
    /// backend pushes cancels ([`BaseQueue::cancel_feed`](crate::BaseQueue::cancel_feed)),
    /// else at its next heartbeat, and stops it; the attempt then ends the job `cancelled`, unless it
    /// finished `done` or `dead` first. It is not retried.
    Requested,
    /// The job had finished already, in this state: nothing changed.
    Finished(JobState),
    /// No job has this id: it never existed, or was purged or deleted.
    NotFound,
}

/// What one [`recover_expired`](crate::BaseQueue::recover_expired) step did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// Jobs returned to `pending`.
    pub requeued: u64,
    /// Jobs sent to `dead`: their attempts were spent, or (SQL) their
    /// record was malformed.
    pub dead: u64,
}

impl Recovered {
    /// A step that requeued `requeued` jobs and sent `dead` to `dead`.
    pub const fn new(requeued: u64, dead: u64) -> Self {
        Self { requeued, dead }
    }
}

/// Counts and timings of one queue, from [`stats`](crate::BaseQueue::stats).
///
/// A backend builds it from [`QueueStats::default`] and sets each field.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Jobs in `pending`, including scheduled ones.
    pub pending: u64,
    /// Jobs in `running`.
    pub running: u64,
    /// Jobs in `done` not yet purged.
    pub done: u64,
    /// Jobs in `dead`.
    pub dead: u64,
    /// Jobs in `cancelled`, not yet purged.
    pub cancelled: u64,
    /// Jobs that reached `done` in the last minute, per second.
    pub throughput: f64,
    /// Mean run time of the done jobs.
    pub mean_run_time: Option<Duration>,
    /// Median run time of the done jobs.
    pub p50_run_time: Option<Duration>,
    /// 99th-percentile run time of the done jobs.
    pub p99_run_time: Option<Duration>,
    /// Whether the queue is paused: see [`pause`](crate::BaseQueue::pause).
    pub paused: bool,
    /// The states whose counts are estimates, not exact counts: empty but
    /// from [`estimate_stats`](crate::BaseQueue::estimate_stats).
    pub estimated: Vec<JobState>,
}

impl QueueStats {
    /// The count for one state.
    pub fn count(&self, state: JobState) -> u64 {
        match state {
            JobState::Pending => self.pending,
            JobState::Running => self.running,
            JobState::Done => self.done,
            JobState::Dead => self.dead,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// Whether the count for `state` is an estimate: see
    /// [`estimate_stats`](crate::BaseQueue::estimate_stats).
    pub fn is_estimated(&self, state: JobState) -> bool {
        self.estimated.contains(&state)
    }
}
