//! [`JobHandle`]: a job with the type of the value its command returns,
//! to wait for that value.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::{BaseQueue, Command, Error, Job, JobId, JobState, codec};

/// A job, typed by what its command returns: `R` is `T` for a command
/// returning `T` or `Result<T, E>`.
///
/// `f(…)` and `f::enqueue(…).await` return one: it holds the job's
/// [`id`](Self::id) and reads the backend the job went to (the default
/// backend, or the one given to [`Enqueue::on`](crate::Enqueue::on)).
/// `f::handle(id)` makes one for an id that `f::enqueue_on`,
/// `f::enqueue_many` or any other enqueue of `f` gave, and
/// [`on`](Self::on) points it at another backend. It converts into its
/// [`JobId`] and compares equal to it. [`wait`](Self::wait) blocks until the
/// job has finished, up to a timeout; [`result`](Self::result) awaits it
/// (with outband's `runtime` feature). Between two looks at the job they
/// wait on the backend's wake-up where it has one
/// ([`Capabilities::finish_wakeups`](crate::Capabilities::finish_wakeups):
/// memory, Redis's blocking pop, PostgreSQL's `LISTEN`), so the value is
/// there as soon as the job ends; elsewhere they poll, at first every few
/// milliseconds and then, while the job runs on, less often, up to a
/// quarter of a second. In eager mode, where the call ran inline, the
/// value is there at once (the last 10,000 of them are kept).
///
/// ```
/// use std::time::Duration;
///
/// #[outband::queue_command]
/// fn add(a: u32, b: u32) -> u32 {
///     a + b
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # outband::set_eager(true);
/// let job = add(2, 3)?;
/// assert_eq!(job.wait(Duration::from_secs(30))?, 5);
/// // later, perhaps in another request, from the id alone
/// let sum = add::handle(job.id()).wait(Duration::from_secs(30))?;
/// # let _ = sum;
/// # Ok(()) }
/// ```
pub struct JobHandle<R> {
    id: JobId,
    command: &'static Command,
    backend: Option<Arc<dyn BaseQueue>>,
    duplicate: bool,
    _returns: PhantomData<fn() -> R>,
}

/// Why [`JobHandle`] gave no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job is `dead`: its attempts are spent, or it could never run.
    #[error("job {id} is dead: {reason}")]
    Dead {
        /// The job.
        id: JobId,
        /// Its last error.
        reason: String,
    },
    /// The job was cancelled.
    #[error("job {id} was cancelled: {reason}")]
    Cancelled {
        /// The job.
        id: JobId,
        /// Why.
        reason: String,
    },
    /// The job had not finished when the wait ended.
    #[error("job {id} had not finished after {waited:?}")]
    TimedOut {
        /// The job.
        id: JobId,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The backend has no such job: it was never enqueued there, or it
    /// finished and retention purged it, with its result.
    #[error("job {id} is not in the backend: never enqueued there, or purged after it finished")]
    Gone {
        /// The job.
        id: JobId,
    },
    /// The job is of another command than the handle's, so its value is
    /// not of the handle's type.
    #[error(
        "job {id} is a job of {found}, not of {expected}: its value is not a `{expected_type}`"
    )]
    OtherCommand {
        /// The job.
        id: JobId,
        /// The handle's command.
        expected: &'static str,
        /// The type the handle reads.
        expected_type: &'static str,
        /// The job's command.
        found: String,
    },
    /// The stored value does not decode as the handle's type: the command
    /// changed its return type since the job ran.
    #[error("the result of job {id} does not decode as a `{expected_type}`: {error}")]
    Decode {
        /// The job.
        id: JobId,
        /// The type the handle reads.
        expected_type: &'static str,
        /// What the decoder said.
        error: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] Error),
}

/// Where a wait stands after one look at the job.
enum Look<R> {
    Finished(Result<R, JobError>),
    Running,
}

impl<R> JobHandle<R> {
    /// The handle of job `id` of `command`, on the default backend. What
    /// `f::handle` calls.
    #[doc(hidden)]
    pub fn new(id: JobId, command: &'static Command) -> Self {
        Self {
            id,
            command,
            backend: None,
            duplicate: false,
            _returns: PhantomData,
        }
    }

    /// The handle of job `id` of `command` on `backend`, or on the default
    /// backend.
    pub(crate) fn with_backend(
        id: JobId,
        command: &'static Command,
        backend: Option<Arc<dyn BaseQueue>>,
    ) -> Self {
        Self {
            id,
            command,
            backend,
            duplicate: false,
            _returns: PhantomData,
        }
    }

    /// Says whether the enqueue that made this handle found the job's
    /// unique key held, and so gave the earlier job.
    pub(crate) fn duplicate(mut self, duplicate: bool) -> Self {
        self.duplicate = duplicate;
        self
    }

    /// Whether the enqueue that gave this handle was a duplicate: the
    /// command is `unique`, a job holding the same key was still in the
    /// key's scope, and this handle is that earlier job's (nothing new was
    /// stored). `false` for a handle made from an id.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// Reads the job on `backend` rather than the default backend.
    #[must_use]
    pub fn on<B: BaseQueue + ?Sized + 'static>(mut self, backend: &Arc<B>) -> Self {
        self.backend = Some(Arc::new(Arc::clone(backend)));
        self
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Cancels the job on the backend the handle reads, recording
    /// `reason`, as [`BaseQueue::cancel`] does: a pending job at once, a
    /// running one when its consumer stops it; a finished one is left as
    /// it is, and the answer says so.
    ///
    /// # Errors
    ///
    /// The backend's error, or [`Error::NoDefaultBackend`].
    pub fn cancel(&self, reason: &str) -> Result<crate::Cancellation, Error> {
        match &self.backend {
            Some(backend) => backend.cancel(self.id, reason),
            None => crate::default_backend()?.cancel(self.id, reason),
        }
    }
}

impl<R: DeserializeOwned> JobHandle<R> {
    /// Blocks until the job has finished, up to `timeout`, and gives its
    /// command's value, or why there is none.
    ///
    /// # Errors
    ///
    /// [`JobError`]: dead, cancelled, not finished in time, gone, of
    /// another command, a value that does not decode, or the backend's
    /// error.
    pub fn wait(&self, timeout: Duration) -> Result<R, JobError> {
        if let Some(result) = self.eager() {
            return result;
        }
        let backend = self.backend()?;
        let wakes = backend.capabilities().finish_wakeups;
        let mut pauses = Pauses::new(self.id, timeout);
        loop {
            if let Look::Finished(result) = self.look(backend.job(self.id)?) {
                return result;
            }
            let pause = if wakes {
                pauses.next_wake()?
            } else {
                pauses.next_poll()?
            };
            backend.wait_finished(self.id, pause)?;
        }
    }

    /// Awaits the job's end, up to `timeout`, without blocking the
    /// runtime: each look at a backend with only the sync contract runs on
    /// outband's blocking pool. Between two looks it awaits the backend's
    /// async wake-up where there is one
    /// ([`AsyncEnqueue::wait_finished_async`](crate::AsyncEnqueue::wait_finished_async):
    /// Redis), and otherwise a timer, polling, so that no thread is held
    /// while it waits. Needs a tokio runtime with its timer.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    #[cfg(feature = "runtime")]
    pub async fn result(&self, timeout: Duration) -> Result<R, JobError> {
        if let Some(result) = self.eager() {
            return result;
        }
        let backend = Arc::clone(self.backend()?);
        let wakes = backend.capabilities().finish_wakeups;
        let mut pauses = Pauses::new(self.id, timeout);
        loop {
            let (id, looked) = (self.id, Arc::clone(&backend));
            let job = crate::blocking::run(move || looked.job(id)).await?;
            if let Look::Finished(result) = self.look(job) {
                return result;
            }
            let woken = match backend.as_async() {
                Some(native) if wakes => native.wait_finished_async(id, pauses.next_wake()?),
                _ => None,
            };
            match woken {
                Some(waited) => waited.await?,
                None => tokio::time::sleep(pauses.next_poll()?).await,
            }
        }
    }

    /// In eager mode, on the default backend: the value the inline run
    /// kept, or `Gone`.
    fn eager(&self) -> Option<Result<R, JobError>> {
        if self.backend.is_some() || !crate::is_eager() {
            return None;
        }
        Some(match crate::eager::result_of(self.id) {
            Some((command, bytes)) if command == self.command.name => {
                decode(self.id, bytes.as_deref())
            }
            Some((command, _)) => Err(JobError::OtherCommand {
                id: self.id,
                expected: self.command.name,
                expected_type: std::any::type_name::<R>(),
                found: command.to_owned(),
            }),
            None => Err(JobError::Gone { id: self.id }),
        })
    }

    fn backend(&self) -> Result<&Arc<dyn BaseQueue>, Error> {
        match &self.backend {
            Some(backend) => Ok(backend),
            None => crate::default_backend(),
        }
    }

    fn look(&self, job: Option<Job>) -> Look<R> {
        let id = self.id;
        let Some(job) = job else {
            return Look::Finished(Err(JobError::Gone { id }));
        };
        if job.command != self.command.name {
            return Look::Finished(Err(JobError::OtherCommand {
                id,
                expected: self.command.name,
                expected_type: std::any::type_name::<R>(),
                found: job.command,
            }));
        }
        let reason = || job.last_error.clone().unwrap_or_default();
        Look::Finished(match job.state {
            JobState::Done => decode(id, job.result.as_deref()),
            JobState::Dead => Err(JobError::Dead {
                id,
                reason: reason(),
            }),
            JobState::Cancelled => Err(JobError::Cancelled {
                id,
                reason: reason(),
            }),
            _ => return Look::Running,
        })
    }
}

/// The first pause between two looks at a running job, doubled after each
/// up to [`LONGEST_PAUSE`], when the handle polls.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);
/// The longest wait on a backend's wake-up before the handle looks again,
/// so that a wake-up lost (a server's failover, say) costs at most this.
const LONGEST_WAKE_WAIT: Duration = Duration::from_secs(5);

/// The pauses of one wait: growing, and none past its timeout.
struct Pauses {
    id: JobId,
    started: Instant,
    timeout: Duration,
    next: Duration,
}

impl Pauses {
    fn new(id: JobId, timeout: Duration) -> Self {
        Self {
            id,
            started: Instant::now(),
            timeout,
            next: FIRST_PAUSE,
        }
    }

    /// The pause before the next look when polling, or `TimedOut` once the
    /// wait is over.
    fn next_poll(&mut self) -> Result<Duration, JobError> {
        let pause = self.next.min(self.left()?);
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        Ok(pause)
    }

    /// How long to wait on a backend's wake-up before the next look, or
    /// `TimedOut` once the wait is over.
    fn next_wake(&self) -> Result<Duration, JobError> {
        Ok(self.left()?.min(LONGEST_WAKE_WAIT))
    }

    fn left(&self) -> Result<Duration, JobError> {
        let waited = self.started.elapsed();
        if waited >= self.timeout {
            return Err(JobError::TimedOut {
                id: self.id,
                waited,
            });
        }
        Ok(self.timeout - waited)
    }
}

/// A stored value as `R`; a command that returns nothing stores nothing,
/// which reads as `()`.
fn decode<R: DeserializeOwned>(id: JobId, bytes: Option<&[u8]>) -> Result<R, JobError> {
    let error = |error: codec::CodecError| JobError::Decode {
        id,
        expected_type: std::any::type_name::<R>(),
        error: error.to_string(),
    };
    match bytes {
        Some(bytes) => codec::decode(bytes).map_err(error),
        None => codec::encode(&())
            .and_then(|unit| codec::decode(&unit))
            .map_err(error),
    }
}

impl<R> Clone for JobHandle<R> {
    fn clone(&self) -> Self {
        Self::with_backend(self.id, self.command, self.backend.clone())
    }
}

impl<R> From<JobHandle<R>> for JobId {
    fn from(handle: JobHandle<R>) -> Self {
        handle.id
    }
}

impl<R> PartialEq<JobId> for JobHandle<R> {
    fn eq(&self, id: &JobId) -> bool {
        self.id == *id
    }
}

impl<R> fmt::Display for JobHandle<R> {
    /// Shows the job's id, as [`JobId`] does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id.fmt(f)
    }
}

impl<R> fmt::Debug for JobHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.id)
            .field("command", &self.command.name)
            .field("returns", &std::any::type_name::<R>())
            .finish_non_exhaustive()
    }
}
