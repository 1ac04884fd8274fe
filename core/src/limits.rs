//! Concurrency limits: at most [`Concurrency::max`] jobs holding one
//! [`Concurrency::key`] run at once, however many consumers and threads
//! claim them. The backend enforces the limit in its claim, so it holds
//! across processes and hosts; see the `concurrency` option of
//! [`queue_command`](crate::queue_command).
//!
//! A pending job whose key is full is passed over, not waited on: a claim
//! takes the jobs after it (of other commands or other keys, lower
//! priorities included), and the job is claimed once a job holding its key
//! leaves `running`, whichever way it leaves (done, failed, cancelled, or
//! recovered when its consumer died). Jobs waiting on one key start in the
//! queue's order among themselves: priority, then enqueue order.
//!
//! ```
//! use outband::{BaseQueue, Concurrency, MemoryQueue, NewJob};
//! use std::time::Duration;
//!
//! let backend = MemoryQueue::new();
//! for n in 0..3u8 {
//!     let job = NewJob::new("app::call_api", vec![n]).concurrency(Concurrency::new("app::call_api", 2));
//!     backend.enqueue(job)?;
//! }
//! let claimed = backend.claim("default", 10, Duration::from_secs(30))?;
//! assert_eq!(claimed.len(), 2, "the third waits for a slot");
//! # Ok::<(), outband::Error>(())
//! ```

use crate::{BaseQueue, Error, NewJob};

/// The longest concurrency key a backend must store, in bytes.
pub const MAX_LIMIT_KEY: usize = 512;

/// A job's concurrency limit: at most `max` jobs holding `key` run at once.
///
/// Keys are global to the backend, across queues: the macro builds them as
/// `command` or `command:value`, so that two commands never share one. Each
/// job carries its own `max`; a claim applies the limit of the job it
/// considers, so that jobs enqueued after the limit changed follow the new
/// one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Concurrency {
    /// The key; 1 to [`MAX_LIMIT_KEY`] bytes.
    pub key: String,
    /// How many jobs holding the key may run at once; at least 1.
    pub max: u32,
}

impl Concurrency {
    /// At most `max` jobs holding `key` running at once.
    pub fn new(key: impl Into<String>, max: u32) -> Self {
        Self {
            key: key.into(),
            max,
        }
    }

    /// Checks the key's length and that `max` is at least 1.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.key.is_empty() || self.key.len() > MAX_LIMIT_KEY {
            return Err(Error::InvalidJob(format!(
                "the concurrency key is {} bytes: it must be 1 to {MAX_LIMIT_KEY}",
                self.key.len()
            )));
        }
        if self.max == 0 {
            return Err(Error::InvalidJob(
                "the concurrency limit is 0: no job holding its key could ever run".into(),
            ));
        }
        Ok(())
    }
}

/// What a command's `concurrency` option says, as
/// [`Command::concurrency`](crate::Command::concurrency) keeps it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConcurrencySpec {
    /// How many of the command's jobs (with one value of `by`) run at once.
    pub max: u32,
    /// The argument whose value the key is made of, `concurrency(max = 3,
    /// by = tenant)`; `None` for one limit over all the command's jobs.
    pub by: Option<&'static str>,
}

/// Refuses a job with a concurrency limit that `backend` does not say it
/// enforces ([`Capabilities::concurrency_limits`](crate::Capabilities::concurrency_limits)),
/// so that the limit is never dropped silently.
pub(crate) fn check_backend<Q: BaseQueue + ?Sized>(backend: &Q, job: &NewJob) -> Result<(), Error> {
    if job.concurrency.is_some() && !backend.capabilities().concurrency_limits {
        return Err(Error::backend(format!(
            "job of {}: this backend does not enforce concurrency limits",
            job.command
        )));
    }
    Ok(())
}
