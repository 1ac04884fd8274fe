//! What the tools that inspect and steer a backend share: the consumer
//! daemon's commands (`stats`, `job`, `dead retry --all`) and the web
//! dashboard (outband-web) show and change jobs the same way.
//!
//! ```
//! use outband::{BaseQueue, MemoryQueue, NewJob, admin, codec};
//!
//! # fn main() -> Result<(), outband::Error> {
//! let backend = MemoryQueue::new();
//! backend.enqueue(NewJob::new("app::ping", codec::encode(&(1u32,))?).queue("mail"))?;
//! backend.pause("reports")?;
//! assert_eq!(admin::queues(&backend)?, ["mail", "reports"]);
//! assert_eq!(admin::retry_all_dead(&backend, "mail")?, 0);
//! # Ok(()) }
//! ```

use crate::{BaseQueue, Error, Job, JobId, Registry};

/// The dead jobs read per call by [`retry_all_dead`] and
/// [`delete_all_dead`].
const BATCH: usize = 500;

/// The queues an operator looks at: those holding jobs and the paused
/// ones, sorted, each once.
pub fn queues(backend: &dyn BaseQueue) -> Result<Vec<String>, Error> {
    with_paused(backend, backend.queues()?)
}

/// `names` (queues holding jobs, as [`BaseQueue::queues`] gave them,
/// perhaps a while ago) with the paused queues, sorted, each once.
pub fn with_paused(backend: &dyn BaseQueue, mut names: Vec<String>) -> Result<Vec<String>, Error> {
    names.extend(backend.paused()?);
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// Retries every dead job of `queue` ([`BaseQueue::retry_dead`]) and
/// returns how many went back to pending.
pub fn retry_all_dead(backend: &dyn BaseQueue, queue: &str) -> Result<u64, Error> {
    each_dead(backend, queue, |id| backend.retry_dead(id))
}

/// Deletes every dead job of `queue` ([`BaseQueue::delete_dead`]) and
/// returns how many.
pub fn delete_all_dead(backend: &dyn BaseQueue, queue: &str) -> Result<u64, Error> {
    each_dead(backend, queue, |id| backend.delete_dead(id))
}

/// Acts on every dead job of `queue`, a batch at a time, and returns on how
/// many it did. A job it could not act on (retried meanwhile and dead
/// again, say) is stepped over, so the loop ends.
fn each_dead(
    backend: &dyn BaseQueue,
    queue: &str,
    mut act: impl FnMut(JobId) -> Result<bool, Error>,
) -> Result<u64, Error> {
    let (mut changed, mut skipped) = (0, 0);
    loop {
        let batch = backend.dead_jobs(queue, skipped, BATCH)?;
        if batch.is_empty() {
            return Ok(changed);
        }
        for job in &batch {
            if act(job.id)? {
                changed += 1;
            } else {
                skipped += 1;
            }
        }
    }
}

fn unknown(bytes: &[u8]) -> String {
    format!(
        "({} bytes; the command is not known to this program)",
        bytes.len()
    )
}

/// A job's arguments as JSON through its command's own types
/// ([`Command::args_json`](crate::Command::args_json)), or, in
/// parentheses, why they cannot be shown: a command `registry` does not
/// know (or no registry), or arguments its types cannot decode.
pub fn args_shown(registry: Option<&Registry>, job: &Job) -> String {
    match registry.and_then(|registry| registry.get(&job.command).ok()) {
        Some(command) => command
            .args_json(&job.args)
            .unwrap_or_else(|error| format!("({error})")),
        None => unknown(&job.args),
    }
}

/// A done job's result as JSON through its command's return type
/// ([`Command::result_json`](crate::Command::result_json)), or, in
/// parentheses, why it cannot be shown; `None` when the job holds no
/// result.
pub fn result_shown(registry: Option<&Registry>, job: &Job) -> Option<String> {
    let result = job.result.as_ref()?;
    let command = registry.and_then(|registry| registry.get(&job.command).ok());
    Some(match command.map(|command| command.result_json(result)) {
        Some(Some(Ok(json))) => json,
        Some(Some(Err(error))) => format!("({error})"),
        Some(None) => format!("({} bytes; its type cannot be read back)", result.len()),
        None => unknown(result),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobState, MemoryQueue, NewJob, Outcome, codec};
    use std::time::Duration;

    fn dead(backend: &MemoryQueue, n: usize) -> Vec<JobId> {
        let jobs = (0..n)
            .map(|i| NewJob::new("app::x", codec::encode(&(i as u64,)).unwrap()).queue("q"))
            .collect();
        let ids = backend.enqueue_many(jobs).unwrap();
        for claim in backend.claim("q", n, Duration::from_secs(60)).unwrap() {
            let outcome = Outcome::Dead {
                error: "no".to_owned(),
            };
            backend.complete(&claim.lease, outcome).unwrap();
        }
        ids
    }

    #[test]
    fn every_dead_job_of_a_queue_is_retried_or_deleted_across_batches() {
        let backend = MemoryQueue::new();
        let ids = dead(&backend, BATCH + 3);
        assert_eq!(retry_all_dead(&backend, "q").unwrap(), (BATCH + 3) as u64);
        assert_eq!(
            backend.job(ids[0]).unwrap().unwrap().state,
            JobState::Pending
        );
        let backend = MemoryQueue::new();
        dead(&backend, 4);
        assert_eq!(delete_all_dead(&backend, "q").unwrap(), 4);
        assert_eq!(backend.stats("q").unwrap().dead, 0);
    }

    #[test]
    fn an_unknown_command_shows_its_size() {
        let job = Job::new(JobId(1), "app::gone", vec![1, 2, 3]);
        assert_eq!(
            args_shown(None, &job),
            "(3 bytes; the command is not known to this program)"
        );
        assert_eq!(result_shown(None, &job), None);
    }
}
