//! Where a job's fate is decided: one claimed job is run, and what happened
//! becomes the [`Outcome`] to complete it with.
//!
//! - The command returns `Ok`: `done`, with its return value stored (or
//!   none, with a warning, when the value cannot be encoded).
//! - The arguments cannot be decoded: `dead` at once, as no attempt could
//!   ever run them.
//! - The command returns `Err`, panics, or is not known to this program (a
//!   consumer running newer code may know it): the attempt failed. The job
//!   is retried after the [`RetryPolicy`](super::RetryPolicy)'s delay while
//!   it has attempts left, and goes to `dead` with the error after its last.
//!
//! A panic is caught here, so the worker's thread lives on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::engine::Engine;
use crate::registry::RunError;
use crate::{Claimed, Job, Lease, Outcome};

/// An attempt that has run, with the job still to be completed.
pub(super) struct Finished {
    pub(super) job: Job,
    pub(super) lease: Lease,
    pub(super) outcome: Outcome,
    pub(super) elapsed: Duration,
}

impl Engine {
    /// Runs one claimed job; the caller completes it.
    pub(super) fn execute(&self, claimed: Claimed) -> Finished {
        self.in_flight.run(&claimed);
        let Claimed { job, lease } = claimed;
        log::info!("job {} {} {} started", job.id, job.command, Attempt(&job));
        let started = Instant::now();
        let outcome = self.run(&job, started);
        let elapsed = started.elapsed();
        self.in_flight.finish(job.id);
        Finished {
            job,
            lease,
            outcome,
            elapsed,
        }
    }

    fn run(&self, job: &Job, started: Instant) -> Outcome {
        let command = match self.registry.get(&job.command) {
            Ok(command) => command,
            // a consumer running newer code may know it: a failed attempt
            Err(error) => return self.failed(job, error.to_string()),
        };
        match catch_unwind(AssertUnwindSafe(|| (command.run)(&job.args))) {
            Ok(Ok(result)) => Outcome::Done {
                result,
                duration: started.elapsed(),
            },
            Ok(Err(RunError::Args(error))) => Outcome::Dead {
                error: format!("undecodable arguments: {error}"),
            },
            Ok(Err(RunError::Failed(error))) => self.failed(job, error),
            Ok(Err(RunError::Output(error))) => {
                log::warn!("job {} {}: result not stored: {error}", job.id, job.command);
                Outcome::Done {
                    result: None,
                    duration: started.elapsed(),
                }
            }
            Err(panic) => self.failed(job, format!("panicked: {}", panic_message(&*panic))),
        }
    }

    /// The retry-or-dead rule for a failed attempt.
    fn failed(&self, job: &Job, error: String) -> Outcome {
        if job.has_attempts_left() {
            Outcome::Retry {
                delay: self.config.retry.delay(job.attempt),
                error,
            }
        } else {
            Outcome::Dead { error }
        }
    }
}

/// Formats as `attempt 2/4`, only when a log line is written.
pub(super) struct Attempt<'a>(pub(super) &'a Job);

impl std::fmt::Display for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attempt {}/{}", self.0.attempt, self.0.max_attempts)
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
