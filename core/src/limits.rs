//! Flow control a backend enforces in its claims, so that it holds across
//! processes and hosts: concurrency limits and rate limits.
//!
//! # Concurrency limits
//!
//! At most [`Concurrency::max`] jobs holding one
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
//! # Rate limits
//!
//! At most [`RateLimit::max`] jobs holding one [`RateLimit::key`] start per
//! [`RateLimit::per`], spaced evenly: one every `per / max`
//! ([`RateLimit::interval`]), with a burst of up to a tenth of `max`
//! ([`RateLimit::burst`], at least 1) so that a consumer that claims late
//! catches up rather than loses its turn. The rule is the generic cell rate
//! algorithm, one time per key: see [`RateLimit::admit`]. Every start counts,
//! a retry's included. A job over its rate is passed over like one over its
//! concurrency limit, and claimed once its turn comes; a backend's `wait`
//! ends by then.
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

use std::time::{Duration, SystemTime};

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

/// A job's rate limit: at most `max` jobs holding `key` start per `per`.
///
/// Keys are global to the backend, across queues, as concurrency keys are.
/// Each job carries its own `max` and `per`; a claim applies those of the
/// job it considers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// The key; 1 to [`MAX_LIMIT_KEY`] bytes.
    pub key: String,
    /// How many jobs holding the key start per `per`; at least 1.
    pub max: u32,
    /// The period; at least a millisecond.
    pub per: Duration,
}

impl RateLimit {
    /// At most `max` jobs holding `key` started per `per`.
    pub fn new(key: impl Into<String>, max: u32, per: Duration) -> Self {
        Self {
            key: key.into(),
            max,
            per,
        }
    }

    /// The time between two starts at the steady rate: `per / max`.
    pub fn interval(&self) -> Duration {
        self.per / self.max.max(1)
    }

    /// How many jobs may start at once after a pause: a tenth of `max`,
    /// rounded up.
    pub fn burst(&self) -> u32 {
        self.max.div_ceil(10).max(1)
    }

    /// How far ahead of its steady schedule a start may be: `interval ×
    /// (burst − 1)`.
    pub fn tolerance(&self) -> Duration {
        self.interval() * (self.burst() - 1)
    }

    /// The one rule of rate limits. `tat` is the key's theoretical arrival
    /// time as kept by the backend (`None` for a key never started), `now`
    /// the backend's clock. A job may start when `tat − tolerance ≤ now`:
    /// then `Ok` gives the key's new `tat`, `max(tat, now) + interval`;
    /// otherwise `Err` gives the time it may start.
    pub fn admit(
        &self,
        tat: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<SystemTime, SystemTime> {
        let Some(tat) = tat else {
            return Ok(now + self.interval());
        };
        let allowed_at = tat
            .checked_sub(self.tolerance())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if allowed_at > now {
            return Err(allowed_at);
        }
        Ok(tat.max(now) + self.interval())
    }

    /// Checks the key's length, that `max` is at least 1 and `per` at
    /// least a millisecond.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.key.is_empty() || self.key.len() > MAX_LIMIT_KEY {
            return Err(Error::InvalidJob(format!(
                "the rate limit's key is {} bytes: it must be 1 to {MAX_LIMIT_KEY}",
                self.key.len()
            )));
        }
        if self.max == 0 {
            return Err(Error::InvalidJob(
                "the rate limit is 0: no job holding its key could ever start".into(),
            ));
        }
        if self.per < Duration::from_millis(1) {
            return Err(Error::InvalidJob(
                "the rate limit's period is under a millisecond".into(),
            ));
        }
        Ok(())
    }
}

/// What a command's `rate` option says, as
/// [`Command::rate`](crate::Command::rate) keeps it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// How many of the command's jobs (with one value of `by`) start per
    /// `per`.
    pub max: u32,
    /// The period.
    pub per: Duration,
    /// The argument whose value the key is made of, `rate(limit = "10/s",
    /// by = tenant)`; `None` for one limit over all the command's jobs.
    pub by: Option<&'static str>,
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

/// Refuses a job with a limit that `backend` does not say it enforces
/// ([`Capabilities::concurrency_limits`](crate::Capabilities::concurrency_limits),
/// [`Capabilities::rate_limits`](crate::Capabilities::rate_limits)), so
/// that a limit is never dropped silently.
pub(crate) fn check_backend<Q: BaseQueue + ?Sized>(backend: &Q, job: &NewJob) -> Result<(), Error> {
    let capabilities = backend.capabilities();
    let missing = if job.concurrency.is_some() && !capabilities.concurrency_limits {
        "concurrency limits"
    } else if job.rate.is_some() && !capabilities.rate_limits {
        "rate limits"
    } else {
        return Ok(());
    };
    Err(Error::backend(format!(
        "job of {}: this backend does not enforce {missing}",
        job.command
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_space_starts_after_a_burst_of_a_tenth() {
        let rate = RateLimit::new("k", 50, Duration::from_secs(1));
        assert_eq!(rate.interval(), Duration::from_millis(20));
        assert_eq!(rate.burst(), 5);
        assert_eq!(RateLimit::new("k", 3, Duration::from_secs(1)).burst(), 1);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut tat = None;
        for started in 0..5 {
            tat =
                Some(rate.admit(tat, now).unwrap_or_else(|at| {
                    panic!("start {started} of the burst refused until {at:?}")
                }));
        }
        let next = rate.admit(tat, now).expect_err("the burst is spent");
        assert_eq!(next, now + Duration::from_millis(20));
        assert!(rate.admit(tat, next).is_ok(), "its turn comes");
        // a key idle for long gets its burst back, no more
        let later = now + Duration::from_secs(60);
        let mut started = 0;
        while let Ok(new) = rate.admit(tat, later) {
            tat = Some(new);
            started += 1;
        }
        assert_eq!(started, 5);
    }
}
