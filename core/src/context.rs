//! [`JobContext`]: what a running command may know about its job, and
//! how it talks back to the consumer running it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::{Job, JobId, Progress};

/// The job a command is running for, handed to a command that asks for it.
///
/// A `#[queue_command]` function may take one parameter of type
/// `JobContext` or `&JobContext`, anywhere in its parameter list. It is not
/// an argument of the job: the enqueueing functions (`f(…)`, `f::enqueue`,
/// `f::schedule`…) leave it out, nothing of it is stored, and the consumer
/// fills it in when the job runs. `f::call` takes it like any other
/// parameter; [`JobContext::detached`] makes one for a test.
///
/// ```
/// use outband::JobContext;
///
/// #[outband::queue_command]
/// fn import(ctx: &JobContext, rows: Vec<String>) {
///     for (done, row) in rows.iter().enumerate() {
///         if ctx.is_cancelled() {
///             return; // the consumer is stopping, or the lease was lost
///         }
///         // … import `row` …
///         ctx.progress((done + 1) as f32 / rows.len() as f32, row.as_str());
///     }
/// }
///
/// fn main() -> Result<(), outband::Error> {
///     # outband::set_eager(true);
///     // a producer passes only the job's arguments
///     import(vec!["a".into(), "b".into()])?;
///     // and a test may run the body with a context of its own
///     import::call(&JobContext::detached(), vec!["a".into()]);
///     Ok(())
/// }
/// ```
///
/// **Cancellation.** [`is_cancelled`](Self::is_cancelled) turns true, and
/// [`cancelled`](Self::cancelled) completes, when the job should stop: it
/// was cancelled ([`cancel`](crate::cancel); the consumer learns of it at
/// once where the backend pushes cancels, else at its next heartbeat, and
/// the job ends `cancelled` unless it finishes
/// `done` or `dead` first), the consumer is stopping and its grace period
/// has ended (the job will be released and run again elsewhere, its
/// attempt not counted), or its lease was lost (another consumer may run
/// it now, and this attempt's outcome will be discarded). A sync command is never interrupted: it checks
/// the flag where it can stop. An async command's future is dropped at
/// those same moments, so `cancelled()` matters to a future that holds
/// something it must clean up first.
///
/// **Timeouts.** With a timeout (`#[queue_command(timeout = "30s")]`, or
/// the enqueue's own), the context also turns cancelled at the attempt's
/// [`deadline`](Self::deadline), and `cancelled()` completes within a
/// second of it: an async command's future is dropped then, and a sync
/// command has the consumer's grace to return before its attempt is
/// recorded as timed out (see [`Job::timeout`]).
///
/// **Progress and heartbeats** go through the consumer's heartbeat thread,
/// so calling them never blocks on the backend, from sync or async code:
/// [`progress`](Self::progress) is stored within a second (the latest
/// report wins), and [`heartbeat`](Self::heartbeat) extends the lease at
/// once rather than at the next regular heartbeat.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: JobId,
    queue: String,
    key: Option<String>,
    attempt: u32,
    max_attempts: u32,
    enqueued_at: SystemTime,
    /// When the attempt times out, and its timeout.
    deadline: Option<(Instant, SystemTime, Duration)>,
    /// Set once the job should stop; `stop` wakes those waiting for it.
    cancelled: AtomicBool,
    stop: Notify,
    /// Whether the job itself was cancelled (`outband::cancel`), rather
    /// than its attempt stopped.
    cancel_requested: AtomicBool,
    reports: Option<Arc<dyn Reports>>,
}

/// Where a context sends its reports: a processor's heartbeat.
pub(crate) trait Reports: Send + Sync {
    /// Stores `progress` for job `id` soon.
    fn progress(&self, id: JobId, progress: Progress);
    /// Extends job `id`'s lease soon.
    fn heartbeat(&self, id: JobId);
}

impl JobContext {
    /// A context that belongs to no consumer: job id 0 in the default queue,
    /// attempt 1 of 1, enqueued now, never cancelled unless
    /// [`cancel`](Self::cancel) is called; its progress and heartbeats go
    /// nowhere. For tests that call a command's body with `f::call`.
    pub fn detached() -> Self {
        let mut job = Job::new(JobId(0), "", Vec::new());
        job.attempt = 1;
        job.max_attempts = 1;
        job.enqueued_at = SystemTime::now();
        Self::new(&job, None, None)
    }

    /// The context of `job`'s running attempt, which times out `timeout`
    /// from now.
    pub(crate) fn new(
        job: &Job,
        timeout: Option<Duration>,
        reports: Option<Arc<dyn Reports>>,
    ) -> Self {
        // a timeout too long for the clocks never comes
        let deadline = timeout.and_then(|timeout| {
            let (now, wall) = (Instant::now(), SystemTime::now());
            Some((
                now.checked_add(timeout)?,
                wall.checked_add(timeout)?,
                timeout,
            ))
        });
        Self {
            inner: Arc::new(Inner {
                id: job.id,
                queue: job.queue.clone(),
                key: job.key.clone(),
                attempt: job.attempt,
                max_attempts: job.max_attempts,
                enqueued_at: job.enqueued_at,
                deadline,
                cancelled: AtomicBool::new(false),
                stop: Notify::new(),
                cancel_requested: AtomicBool::new(false),
                reports,
            }),
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.id
    }

    /// The queue the job was claimed from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// The job's ordering key, if its command has one.
    pub fn key(&self) -> Option<&str> {
        self.inner.key.as_deref()
    }

    /// This attempt's number: 1 for the first run.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The attempts the job gets before it goes to `dead`.
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// Whether this is the job's last attempt: a failure now makes it dead.
    pub fn is_last_attempt(&self) -> bool {
        self.inner.attempt >= self.inner.max_attempts
    }

    /// When the job was stored, on the backend's clock.
    pub fn enqueued_at(&self) -> SystemTime {
        self.inner.enqueued_at
    }

    /// When this attempt times out, on this consumer's clock: its start
    /// plus the job's timeout (`timeout = "…"`, or the enqueue's own);
    /// `None` without one. See [`Job::timeout`] for what happens then.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.inner.deadline.map(|(_, wall, _)| wall)
    }

    /// This attempt's timeout, if it has one.
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.deadline.map(|(_, _, timeout)| timeout)
    }

    /// Whether the job should stop now: see the type's docs for when; also
    /// from its [`deadline`](Self::deadline) on.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
            || self
                .inner
                .deadline
                .is_some_and(|(deadline, _, _)| Instant::now() >= deadline)
    }

    /// The deadline, as an instant, for the processor.
    pub(crate) fn deadline_instant(&self) -> Option<Instant> {
        self.inner.deadline.map(|(deadline, _, _)| deadline)
    }

    /// Completes once the job should stop; at once if it already should.
    /// Works on any async runtime.
    pub async fn cancelled(&self) {
        loop {
            let woken = self.inner.stop.notified();
            let mut woken = std::pin::pin!(woken);
            // registered before the look, so a `cancel` between the two
            // still wakes it
            woken.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            woken.await;
        }
    }

    /// Asks the job to stop: [`is_cancelled`](Self::is_cancelled) turns
    /// true and [`cancelled`](Self::cancelled) completes, in every clone of
    /// this context. The consumer calls it; a test may too.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
    }

    /// The job was cancelled while it ran: the context is cancelled, and
    /// an async command's future is dropped.
    pub(crate) fn request_cancel(&self) {
        self.inner.cancel_requested.store(true, Ordering::SeqCst);
        self.cancel();
    }

    /// Whether the job itself was cancelled while it ran.
    pub(crate) fn is_cancel_requested(&self) -> bool {
        self.inner.cancel_requested.load(Ordering::SeqCst)
    }

    /// Reports how far the job got: `fraction` from 0.0 to 1.0 (clamped),
    /// and a note (cut to [`Progress::MAX_NOTE`] bytes). It is stored on
    /// the job within a second, replacing the report before, and shown by
    /// the daemon's `job ID`; [`Job::progress`] reads it back. Never
    /// blocks; a report the backend cannot store (the lease was lost, or
    /// the backend keeps no progress) is logged and dropped.
    pub fn progress(&self, fraction: f32, note: impl Into<String>) {
        if let Some(reports) = &self.inner.reports {
            reports.progress(self.inner.id, Progress::new(fraction, note));
        }
    }

    /// Extends the job's lease now, rather than at the next regular
    /// heartbeat: for a command about to start a long step. Never blocks;
    /// a lease found lost cancels the context.
    pub fn heartbeat(&self) {
        if let Some(reports) = &self.inner.reports {
            reports.heartbeat(self.inner.id);
        }
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.inner.id)
            .field("queue", &self.inner.queue)
            .field("key", &self.inner.key)
            .field("attempt", &self.inner.attempt)
            .field("max_attempts", &self.inner.max_attempts)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}
