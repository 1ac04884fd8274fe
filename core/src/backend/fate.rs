//! What a stored job becomes: the rules every backend keeps, stated once.
//!
//! The processor decides a job's fate after a run ([`Outcome`]); a backend
//! decides it in one place only, when a lease has expired and no one
//! completed it: [`expired`] gives that decision and its reason. Backends
//! that hold jobs in process (`MemoryQueue`, the `custom-backend` example)
//! apply both with [`apply`] and [`expire`], store new jobs with [`new_job`]
//! and check a batch with [`validate_batch`]. Backends that change state in
//! their own language (the Lua of `outband-redis`, the SQL of
//! `outband-diesel`) keep the same rule and write the same reason, built
//! from [`LEASE_EXPIRED_PARTS`].
//!
//! ```
//! use outband::backend::fate::{self, Expired};
//!
//! assert_eq!(
//!     fate::expired(1, 3),
//!     Expired::Requeue { reason: "lease expired on attempt 1 of 3".into() },
//! );
//! assert_eq!(
//!     fate::expired(3, 3),
//!     Expired::Dead { reason: "lease expired on attempt 3 of 3".into() },
//! );
//! ```

use std::time::{Duration, SystemTime};

use crate::{Error, Job, JobId, JobState, NewJob, Outcome};

/// The text of an expired lease's reason around its two numbers: the reason
/// is `PARTS.0`, the attempt, `PARTS.1`, then `max_attempts`, as in
/// `lease expired on attempt 3 of 3`. For backends that build the reason in
/// their own language; [`lease_expired`] builds it in Rust.
pub const LEASE_EXPIRED_PARTS: (&str, &str) = ("lease expired on attempt ", " of ");

/// The reason recorded on a job whose lease expired on attempt `attempt` of
/// `max_attempts`, whether the job is requeued or dead.
pub fn lease_expired(attempt: u32, max_attempts: u32) -> String {
    let (head, of) = LEASE_EXPIRED_PARTS;
    format!("{head}{attempt}{of}{max_attempts}")
}

/// What a `running` job whose lease passed its deadline becomes in
/// [`recover_expired`](crate::BaseQueue::recover_expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expired {
    /// Attempts are left: back to `pending`, ready now, the expired attempt
    /// counted (the worker may have run part of it).
    Requeue {
        /// The job's new `last_error`.
        reason: String,
    },
    /// The expired attempt was the last one: to `dead`.
    Dead {
        /// The job's new `last_error`.
        reason: String,
    },
}

impl Expired {
    /// The state the job goes to: `pending` or `dead`.
    pub fn state(&self) -> JobState {
        match self {
            Self::Requeue { .. } => JobState::Pending,
            Self::Dead { .. } => JobState::Dead,
        }
    }

    /// The reason recorded as the job's `last_error`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Requeue { reason } | Self::Dead { reason } => reason,
        }
    }
}

/// The expiry decision for a job whose lease expired on attempt `attempt`
/// (already counted by its claim) of `max_attempts`: requeue while
/// `attempt < max_attempts`, else dead; the reason is [`lease_expired`].
pub fn expired(attempt: u32, max_attempts: u32) -> Expired {
    let reason = lease_expired(attempt, max_attempts);
    if attempt < max_attempts {
        Expired::Requeue { reason }
    } else {
        Expired::Dead { reason }
    }
}

/// Applies the expiry decision to a `running` job whose lease expired, at
/// `now` on the backend's clock, and returns the decision: `pending` with
/// `run_at = now`, or `dead` with `finished_at = now`; the reason is its
/// `last_error`. The caller drops the lease.
pub fn expire(job: &mut Job, now: SystemTime) -> Expired {
    let decision = expired(job.attempt, job.max_attempts);
    job.state = decision.state();
    job.last_error = Some(decision.reason().to_owned());
    match decision {
        Expired::Requeue { .. } => job.run_at = now,
        Expired::Dead { .. } => job.finished_at = Some(now),
    }
    decision
}

/// Applies an outcome to the `running` job it was recorded for, at `now` on
/// the backend's clock, as [`complete`](crate::BaseQueue::complete) states
/// it, and returns the job's new state:
///
/// - [`Outcome::Done`]: `done`, with its result, duration and `finished_at`;
/// - [`Outcome::Retry`]: `pending`, ready `delay` from now, with the error;
/// - [`Outcome::Dead`]: `dead`, with the error and `finished_at`;
/// - [`Outcome::Release`]: `pending`, ready now, the attempt not counted.
///
/// The caller checks the lease first and drops it; what else a state change
/// means to its store (an ordering key handed on, an index) is its own.
pub fn apply(job: &mut Job, outcome: Outcome, now: SystemTime) -> JobState {
    job.state = match outcome {
        Outcome::Done { result, duration } => {
            job.result = result;
            job.duration = Some(duration);
            job.finished_at = Some(now);
            JobState::Done
        }
        Outcome::Retry { delay, error } => {
            job.last_error = Some(error);
            job.run_at = now + delay;
            JobState::Pending
        }
        Outcome::Dead { error } => {
            job.last_error = Some(error);
            job.finished_at = Some(now);
            JobState::Dead
        }
        Outcome::Release => {
            job.attempt = job.attempt.saturating_sub(1);
            job.run_at = now;
            JobState::Pending
        }
    };
    job.state
}

/// Cancels `job` at `now` on the backend's clock: `cancelled`, with
/// `finished_at` and `reason` as its `last_error`. For a pending job, and
/// for a running one whose cancel was requested once its attempt ends
/// short of `done` or `dead` (see [`ends_cancelled`]).
pub fn cancel(job: &mut Job, reason: &str, now: SystemTime) {
    job.state = JobState::Cancelled;
    job.finished_at = Some(now);
    job.last_error = Some(reason.to_owned());
}

/// Whether an attempt of a job whose cancel was requested while it ran
/// ends the job `cancelled` when it ends with `outcome`: a retry or a
/// release would run it again, so they do; `done` and `dead` stand.
/// An expired lease does too (see [`cancel`](crate::BaseQueue::cancel)).
pub fn ends_cancelled(outcome: &Outcome) -> bool {
    !matches!(outcome, Outcome::Done { .. } | Outcome::Dead { .. })
}

/// The stored record of a new job given the id `id` at `now` on the
/// backend's clock: `pending`, no attempt yet, ready when its
/// [`When`](crate::When) resolves, no times, error or result.
pub fn new_job(new: NewJob, id: JobId, now: SystemTime) -> Job {
    Job {
        id,
        command: new.command,
        args: new.args,
        queue: new.queue,
        key: new.key,
        priority: new.priority,
        attempt: 0,
        max_attempts: new.max_attempts,
        state: JobState::Pending,
        run_at: new.when.resolve(now),
        enqueued_at: now,
        started_at: None,
        finished_at: None,
        duration: None,
        last_error: None,
        result: None,
        progress: None,
        timeout: new.timeout.map(whole_millis),
        concurrency: new.concurrency,
        rate: new.rate,
    }
}

/// A timeout as backends keep it: whole milliseconds.
pub fn whole_millis(timeout: Duration) -> Duration {
    Duration::from_millis(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// What [`enqueue_many`](crate::BaseQueue::enqueue_many) checks before it
/// stores anything: every job passes [`NewJob::validate`], and none is
/// unique (a unique job goes alone, through
/// [`enqueue_unique`](crate::BaseQueue::enqueue_unique), which says whether
/// it was a duplicate). A batch is all or nothing, so the first refusal is
/// the batch's error and nothing is stored. An empty batch is valid and
/// stores nothing.
pub fn validate_batch(jobs: &[NewJob]) -> Result<(), Error> {
    jobs.iter().try_for_each(|job| {
        job.validate()?;
        match &job.unique {
            Some(unique) => Err(Error::InvalidJob(format!(
                "job of {} has the unique key `{}`: a unique job is enqueued alone, \
                 with enqueue_unique, not in a batch",
                job.command, unique.key
            ))),
            None => Ok(()),
        }
    })
}

/// What [`enqueue_unique`](crate::BaseQueue::enqueue_unique) checks before
/// it stores anything: the job passes [`NewJob::validate`]. Returns its
/// unique key and scope, or `None` for a job without one, which is stored
/// as [`enqueue`](crate::BaseQueue::enqueue) stores it.
pub fn validate_unique(job: &NewJob) -> Result<Option<&crate::Unique>, Error> {
    job.validate()?;
    Ok(job.unique.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn running(attempt: u32, max_attempts: u32) -> Job {
        let mut job = new_job(
            NewJob::new("c", vec![1]).max_attempts(max_attempts),
            JobId(1),
            SystemTime::UNIX_EPOCH,
        );
        job.state = JobState::Running;
        job.attempt = attempt;
        job
    }

    #[test]
    fn an_expired_lease_requeues_while_attempts_are_left_with_one_reason() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(9);
        let mut job = running(2, 3);
        let decision = expire(&mut job, now);
        assert_eq!(decision.state(), JobState::Pending);
        assert_eq!(
            (job.state, job.attempt, job.run_at, job.finished_at),
            (JobState::Pending, 2, now, None)
        );
        assert_eq!(
            job.last_error.as_deref(),
            Some("lease expired on attempt 2 of 3")
        );

        let mut job = running(3, 3);
        assert_eq!(expire(&mut job, now).state(), JobState::Dead);
        assert_eq!((job.state, job.finished_at), (JobState::Dead, Some(now)));
        assert_eq!(
            job.last_error.as_deref(),
            Some("lease expired on attempt 3 of 3")
        );
    }

    #[test]
    fn the_parts_build_the_same_reason() {
        let (head, of) = LEASE_EXPIRED_PARTS;
        assert_eq!(format!("{head}4{of}7"), lease_expired(4, 7));
    }

    #[test]
    fn outcomes_apply_as_the_contract_states() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let mut job = running(1, 3);
        let done = Outcome::Done {
            result: Some(vec![7]),
            duration: Duration::from_millis(3),
        };
        assert_eq!(apply(&mut job, done, now), JobState::Done);
        assert_eq!(
            (job.result.clone(), job.duration, job.finished_at),
            (Some(vec![7]), Some(Duration::from_millis(3)), Some(now))
        );

        let mut job = running(1, 3);
        let retry = Outcome::Retry {
            delay: Duration::from_secs(2),
            error: "e".into(),
        };
        assert_eq!(apply(&mut job, retry, now), JobState::Pending);
        assert_eq!((job.run_at, job.attempt), (now + Duration::from_secs(2), 1));
        assert_eq!(job.last_error.as_deref(), Some("e"));

        let mut job = running(1, 3);
        let dead = Outcome::Dead { error: "x".into() };
        assert_eq!(apply(&mut job, dead, now), JobState::Dead);
        assert_eq!(job.finished_at, Some(now));

        let mut job = running(1, 3);
        assert_eq!(apply(&mut job, Outcome::Release, now), JobState::Pending);
        assert_eq!(
            (job.run_at, job.attempt, job.state),
            (now, 0, JobState::Pending)
        );
    }

    #[test]
    fn a_batch_with_one_bad_job_is_refused() {
        let good = NewJob::new("c", vec![1]);
        assert!(validate_batch(&[]).is_ok());
        assert!(validate_batch(&[good.clone(), good.clone()]).is_ok());
        let bad = NewJob::new("", vec![1]);
        assert!(matches!(
            validate_batch(&[good, bad]),
            Err(Error::InvalidJob(_))
        ));
    }
}
