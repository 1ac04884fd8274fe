//! Completing jobs: one call to the backend completes the
//! jobs that finished together and claims the next jobs in the same call,
//! trying again while the backend is unavailable; then each attempt is
//! settled and logged as [`Processed`].

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::execute::{Attempt, Finished};
use crate::observe::{self, AttemptEnd};
use crate::{Claimed, Completion, Error, Outcome};

/// How [`process`](super::Processor::process) ended for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    /// The command succeeded; the job is `done`.
    Done,
    /// The attempt failed; the job will be retried after `delay`.
    Retried {
        /// The backoff.
        delay: Duration,
        /// Why it failed.
        error: String,
    },
    /// The job went to `dead`.
    Dead {
        /// Why.
        error: String,
    },
    /// The lease had been lost, so the outcome was discarded.
    LeaseLost,
}

impl Engine {
    /// Runs one claimed job and completes it.
    pub(super) fn process(&self, claimed: Claimed) -> Result<Processed, Error> {
        let finished = self.execute(claimed);
        self.send_last_progress(std::slice::from_ref(&finished));
        let completion = self
            .backend
            .complete(&finished.lease, finished.outcome.clone());
        self.settle(finished, completion)
    }

    /// Records the outcomes of several attempts in one call to the backend,
    /// trying again while the backend is unavailable: a lost outcome would
    /// make the job run twice once its lease expires.
    pub(super) fn complete_many(&self, finished: Vec<Finished>) {
        let _ = self.complete_and_claim(finished, 0);
    }

    /// Records the outcomes of several attempts and, in the same call, claims
    /// up to `want` jobs for the threads that ran them
    /// ([`BaseQueue::complete_and_claim`](crate::BaseQueue::complete_and_claim)),
    /// trying again while the backend is unavailable: a lost outcome would
    /// make the job run twice once its lease expires. The claim starts at the next queue in turn; where that
    /// queue has fewer than `want` ready, the other queues are asked after.
    /// The jobs claimed are held (see [`hold`](Self::hold)).
    pub(super) fn complete_and_claim(&self, finished: Vec<Finished>, want: usize) -> Vec<Claimed> {
        let start = self.next_queue();
        self.stop.claim_sent(want);
        let claimed = self.complete_and_claim_calls(finished, want, start);
        self.hold(&claimed);
        self.stop.claim_landed(want);
        claimed
    }

    /// Stores the progress the commands reported last, before their jobs
    /// are completed.
    fn send_last_progress(&self, finished: &[Finished]) {
        for finished in finished {
            if let Some(progress) = &finished.progress {
                self.send_progress(&finished.lease, progress);
            }
        }
    }

    /// The calls of [`complete_and_claim`](Self::complete_and_claim).
    fn complete_and_claim_calls(
        &self,
        finished: Vec<Finished>,
        want: usize,
        start: usize,
    ) -> Vec<Claimed> {
        self.send_last_progress(&finished);
        let first = &self.queues[start % self.queues.len()];
        let completions = || {
            finished
                .iter()
                .map(|f| (f.lease.clone(), f.outcome.clone()))
                .collect()
        };
        let mut backoff = Duration::from_millis(50);
        let results = loop {
            let started = Instant::now();
            let attempt = if want == 0 {
                self.backend
                    .complete_many(completions())
                    .map(|done| (done, Vec::new()))
            } else {
                self.backend
                    .complete_and_claim(completions(), first, want, self.config.lease)
            };
            match attempt {
                Err(error) if error.is_retryable() && backoff < self.config.lease / 2 => {
                    log::warn!(
                        "completing {} jobs failed, retrying: {error}",
                        finished.len()
                    );
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(error) => break Err(error),
                Ok(results) => {
                    if let (Some(observer), true) = (observe::observer(), want > 0) {
                        observer.claimed(first, results.1.len(), started.elapsed());
                    }
                    break Ok(results);
                }
            }
        };
        match results {
            Ok((results, mut claimed)) => {
                for (finished, completion) in finished.into_iter().zip(results) {
                    let _ = self.settle(finished, Ok(completion));
                }
                for i in 1..self.queues.len() {
                    if claimed.len() >= want {
                        break;
                    }
                    let queue = &self.queues[(start + i) % self.queues.len()];
                    let started = Instant::now();
                    match self
                        .backend
                        .claim(queue, want - claimed.len(), self.config.lease)
                    {
                        Ok(more) => {
                            if let Some(observer) = observe::observer() {
                                observer.claimed(queue, more.len(), started.elapsed());
                            }
                            claimed.extend(more);
                        }
                        Err(error) => {
                            log::error!("claiming failed: {error}");
                            break;
                        }
                    }
                }
                claimed
            }
            Err(error) => {
                log::error!(
                    "completing {} jobs failed; their leases will expire and the jobs run again: {error}",
                    finished.len()
                );
                self.in_flight.remove(finished.iter().map(|f| f.job.id));
                Vec::new()
            }
        }
    }

    /// Logs how an attempt ended once it was completed (or not).
    fn settle(
        &self,
        finished: Finished,
        completion: Result<Completion, Error>,
    ) -> Result<Processed, Error> {
        self.in_flight.remove([finished.job.id]);
        let Finished {
            job,
            outcome,
            elapsed,
            ..
        } = finished;
        let (id, command, attempt) = (job.id, &job.command, Attempt(&job));
        let completion = completion?;
        if let Some(observer) = observe::observer() {
            let end = match &outcome {
                _ if completion == Completion::LeaseLost => AttemptEnd::LeaseLost,
                Outcome::Done { .. } => AttemptEnd::Done,
                Outcome::Release => AttemptEnd::Released,
                Outcome::Retry { .. } => AttemptEnd::Retried,
                Outcome::Dead { .. } => AttemptEnd::Dead,
            };
            observer.attempt_ended(&observe::Attempt {
                command,
                queue: &job.queue,
                end,
                run_time: elapsed,
            });
        }
        if completion == Completion::LeaseLost {
            log::warn!(
                "job {id} {command} {attempt} ended after {elapsed:?} but its lease was lost; \
                 its outcome was discarded"
            );
            return Ok(Processed::LeaseLost);
        }
        Ok(match outcome {
            Outcome::Done { .. } | Outcome::Release => {
                log::info!("job {id} {command} {attempt} done in {elapsed:?}");
                Processed::Done
            }
            Outcome::Retry { delay, error } => {
                log::warn!(
                    "job {id} {command} {attempt} failed in {elapsed:?}, retry in {delay:?}: {error}"
                );
                Processed::Retried { delay, error }
            }
            Outcome::Dead { error } => {
                log::error!("job {id} {command} {attempt} failed in {elapsed:?}, dead: {error}");
                Processed::Dead { error }
            }
        })
    }
}
