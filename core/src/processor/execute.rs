//! Where a job's fate is decided: one claimed job is run, and what happened
//! becomes the [`Outcome`] to complete it with.
//!
//! - The command returns `Ok`: `done`, with its return value stored (or
//!   none, with a warning, when the value cannot be encoded).
//! - The arguments cannot be decoded: `dead` at once, as no attempt could
//!   ever run them.
//! - The command returns `Err`, panics, or is not known to this program (a
//!   consumer running newer code may know it): the attempt failed. The job
//!   is retried after the command's [`Backoff`](super::Backoff) (by default
//!   the consumer's [`RetryPolicy`](super::RetryPolicy)) while it has
//!   attempts left, and goes to `dead` with the error after its last.
//! - The command returns [`Fail::retry_after`](crate::Fail::retry_after):
//!   the same, after the delay it gives.
//! - The command returns [`Fail::fatal`](crate::Fail::fatal): `dead` at
//!   once.
//!
//! A panic is caught here, so the worker's thread lives on; a panic inside
//! an async command's future is caught where the future is polled, the same
//! way.
//!
//! An async job runs on the processor's async runtime
//! ([`execute_async`](Engine::execute_async)), or, step by step and in the
//! simple loop, on the calling thread, which waits for it.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::engine::Engine;
use super::in_flight::Limit;
use crate::registry::{CommandFuture, Run, RunError};
use crate::{Backoff, Claimed, Command, Job, JobContext, Lease, Outcome, Progress};

/// What running a command gave: its encoded result or why it failed, or
/// the payload of its panic.
type RunResult = Result<Result<Option<Vec<u8>>, RunError>, Box<dyn Any + Send>>;

/// An attempt begun: the job, its lease, its command (or why it is not
/// known here), its context, and when it started.
type Begun = (
    Job,
    Lease,
    Result<&'static Command, crate::Error>,
    JobContext,
    Instant,
);

/// An attempt that has run, with the job still to be completed.
pub(super) struct Finished {
    pub(super) job: Job,
    pub(super) lease: Lease,
    pub(super) outcome: Outcome,
    pub(super) elapsed: Duration,
    /// The command's last progress report, not sent yet: it is stored
    /// before the completion.
    pub(super) progress: Option<Progress>,
}

impl Engine {
    /// Runs one claimed job on this thread; the caller completes it.
    pub(super) fn execute(&self, claimed: Claimed) -> Finished {
        let (job, lease, command, context, started) = self.begin_attempt(claimed);
        let outcome = match command {
            // a consumer running newer code may know it: a failed attempt
            Err(error) => self.failed(&job, Backoff::Consumer, error.to_string()),
            Ok(command) => {
                let result = catch_unwind(AssertUnwindSafe(|| match command.run {
                    Run::Sync(run) => run(&job.args, &context),
                    Run::Async(run) => self.run_here(Box::pin(within_deadline(
                        run(&job.args, &context),
                        &context,
                    ))),
                }));
                self.outcome(&job, command, result, started)
            }
        };
        self.end_attempt(job, lease, outcome, started)
    }

    /// Runs one claimed async job, on the async runtime; the caller
    /// completes it.
    pub(super) async fn execute_async(&self, claimed: Claimed) -> Finished {
        let (job, lease, command, context, started) = self.begin_attempt(claimed);
        let outcome = match command {
            Err(error) => self.failed(&job, Backoff::Consumer, error.to_string()),
            Ok(command) => {
                let result = AssertUnwindSafe(async {
                    match command.run {
                        Run::Async(run) => {
                            within_deadline(run(&job.args, &context), &context).await
                        }
                        Run::Sync(run) => run(&job.args, &context),
                    }
                })
                .catch_unwind()
                .await;
                self.outcome(&job, command, result, started)
            }
        };
        self.end_attempt(job, lease, outcome, started)
    }

    /// Fails an attempt that cannot run in this processor, as a panic would.
    #[cfg(feature = "runtime")]
    pub(super) fn unrunnable(&self, claimed: Claimed, error: String) -> Finished {
        let (job, lease, _, _, started) = self.begin_attempt(claimed);
        let outcome = self.failed(&job, Backoff::Consumer, error);
        self.end_attempt(job, lease, outcome, started)
    }

    /// Starts an attempt: the job is running, under a new context that
    /// reports to this processor's heartbeat and times out as the job's
    /// timeout, or its command's, says.
    /// The job's command is looked up here, once.
    fn begin_attempt(&self, claimed: Claimed) -> Begun {
        let found = self.registry.get(&claimed.job.command);
        let command = found.as_ref().ok().copied();
        let timeout = claimed
            .job
            .timeout
            .or_else(|| command.and_then(|command| command.timeout));
        let context = JobContext::new(&claimed.job, timeout, Some(self.requests.clone()));
        let limit = context
            .deadline_instant()
            .zip(timeout)
            .map(|(deadline, timeout)| Limit {
                deadline,
                timeout,
                attempt: claimed.job.attempt,
                max_attempts: claimed.job.max_attempts,
                backoff: command.map_or(Backoff::Consumer, |command| command.backoff),
            });
        self.in_flight.run(&claimed, &context, limit);
        let Claimed { job, lease } = claimed;
        log::info!("job {} {} {} started", job.id, job.command, Attempt(&job));
        (job, lease, found, context, Instant::now())
    }

    fn end_attempt(&self, job: Job, lease: Lease, outcome: Outcome, started: Instant) -> Finished {
        let elapsed = started.elapsed();
        self.in_flight.finish(job.id);
        let progress = self.requests.take(job.id);
        Finished {
            job,
            lease,
            outcome,
            elapsed,
            progress,
        }
    }

    /// Runs an async command's future to its end on the async runtime, this
    /// thread waiting for it: a job run step by step, or by the simple loop.
    fn run_here(&self, future: CommandFuture) -> Result<Option<Vec<u8>>, RunError> {
        #[cfg(feature = "runtime")]
        {
            let task = self.async_jobs.spawn(future).map_err(RunError::Failed)?;
            match futures_lite::future::block_on(task) {
                Ok(Some(result)) => result,
                // its lease was released: this outcome is discarded
                Ok(None) => Err(RunError::Failed("released by a stop".into())),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => Err(RunError::Failed(format!(
                    "the async runtime dropped the job: {error}"
                ))),
            }
        }
        #[cfg(not(feature = "runtime"))]
        {
            drop(future);
            Err(RunError::Failed(super::runtime::NO_RUNTIME.into()))
        }
    }

    /// The outcome of an attempt that ran.
    fn outcome(
        &self,
        job: &Job,
        command: &Command,
        result: RunResult,
        started: Instant,
    ) -> Outcome {
        match result {
            Ok(Ok(result)) => Outcome::Done {
                result,
                duration: started.elapsed(),
            },
            Ok(Err(RunError::Args(error))) => Outcome::Dead {
                error: format!("undecodable arguments: {error}"),
            },
            Ok(Err(RunError::Failed(error))) => self.failed(job, command.backoff, error),
            Ok(Err(RunError::RetryAfter(error, delay))) => {
                self.failed(job, Backoff::Fixed(delay), error)
            }
            Ok(Err(RunError::Fatal(error))) => Outcome::Dead { error },
            // the backend ends a job cancelled while it ran `cancelled`
            Ok(Err(RunError::Cancelled)) => Outcome::Release,
            Ok(Err(RunError::Output(error))) => {
                log::warn!("job {} {}: result not stored: {error}", job.id, job.command);
                Outcome::Done {
                    result: None,
                    duration: started.elapsed(),
                }
            }
            Err(panic) => self.failed(
                job,
                command.backoff,
                format!("panicked: {}", panic_message(&*panic)),
            ),
        }
    }

    /// The retry-or-dead rule for a failed attempt, retried after
    /// `backoff`'s delay.
    fn failed(&self, job: &Job, backoff: Backoff, error: String) -> Outcome {
        self.failed_attempt(job.attempt, job.max_attempts, backoff, error)
    }

    /// [`failed`](Self::failed) for attempt `attempt` of `max_attempts`.
    pub(super) fn failed_attempt(
        &self,
        attempt: u32,
        max_attempts: u32,
        backoff: Backoff,
        error: String,
    ) -> Outcome {
        if attempt < max_attempts {
            Outcome::Retry {
                delay: backoff.delay(attempt, &self.config.retry),
                error,
            }
        } else {
            Outcome::Dead { error }
        }
    }
}

/// An async command's run, ended at its context's deadline, if it has
/// one (the future is dropped there and the attempt fails as timed out),
/// or once the job is cancelled while it runs (dropped too).
fn within_deadline(
    run: CommandFuture,
    context: &JobContext,
) -> impl Future<Output = Result<Option<Vec<u8>>, RunError>> + Send + 'static {
    let limit = context.deadline_instant().zip(context.timeout());
    let context = context.clone();
    let cancelled = async move {
        context.cancelled().await;
        if context.is_cancel_requested() {
            return Err(RunError::Cancelled);
        }
        // a stop, a lost lease or the deadline: each ends the future its
        // own way
        std::future::pending().await
    };
    let run = futures_lite::future::or(run, cancelled);
    async move {
        #[cfg(feature = "runtime")]
        if let Some((deadline, timeout)) = limit {
            return match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(result) => result,
                Err(_) => Err(RunError::Failed(super::in_flight::timed_out(timeout))),
            };
        }
        #[cfg(not(feature = "runtime"))]
        let _ = limit;
        run.await
    }
}

/// Formats as `attempt 2/4`, only when a log line is written.
pub(super) struct Attempt<'a>(pub(super) &'a Job);

impl std::fmt::Display for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attempt {}/{}", self.0.attempt, self.0.max_attempts)
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
