//! Awaited enqueues onto a backend with only the sync contract, coalesced:
//! the jobs that callers await together go to the backend as one
//! [`enqueue_many`](crate::BaseQueue::enqueue_many) call, run on the
//! blocking pool, as a database's group commit does.
//!
//! Each backend has a lane: the jobs waiting, and up to [`FLUSHERS`] calls
//! in flight, each taking up to [`BATCH`] of the jobs waiting when it
//! starts. A lone caller's job goes at once, in a call of its own; under
//! load, the jobs that arrive while a call is in flight go together in the
//! next one, so a round trip (and on SQL databases a commit) serves many.
//!
//! A batch is all or nothing, so one caller's job must not fail another's:
//! each job is validated before it joins a lane, and when a batch fails for
//! any reason but an unreachable backend, its jobs are stored one by one,
//! each caller getting its own result. When the backend is unreachable,
//! nothing was stored and every caller gets that error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::oneshot;

use crate::{BaseQueue, Error, JobId, NewJob};

/// The most calls in flight per backend: enough to overlap a call's round
/// trip with the next batch's, few enough to leave the backend's
/// connections to other work.
const FLUSHERS: usize = 4;

/// The most jobs in one call.
const BATCH: usize = 512;

type Reply = oneshot::Sender<Result<JobId, Error>>;

#[derive(Default)]
struct Lane {
    waiting: Vec<(NewJob, Reply)>,
    flushers: usize,
}

/// The lanes, by the address of the backend they serve: a lane lives only
/// while it has jobs or calls in flight, and its flushers hold the backend,
/// so no other backend can take its address meanwhile.
fn lanes() -> MutexGuard<'static, HashMap<usize, Lane>> {
    static LANES: OnceLock<Mutex<HashMap<usize, Lane>>> = OnceLock::new();
    LANES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Stores `job` on `backend` (whose address is `key`) with the jobs awaited
/// together with it, and gives its id.
pub(crate) async fn enqueue(
    key: usize,
    backend: Arc<dyn BaseQueue>,
    job: NewJob,
) -> Result<JobId, Error> {
    job.validate()?;
    let (reply, receiver) = oneshot::channel();
    let start_flusher = {
        let mut lanes = lanes();
        let lane = lanes.entry(key).or_default();
        lane.waiting.push((job, reply));
        let start = lane.flushers < FLUSHERS;
        if start {
            lane.flushers += 1;
        }
        start
    };
    if start_flusher {
        // the flusher replies to every caller it serves; its own future is
        // not needed
        drop(crate::blocking::run(move || flush(key, &*backend)));
    }
    receiver
        .await
        .unwrap_or_else(|_| Err(Error::backend("the enqueue's call ended without a reply")))
}

/// Counts a flusher out of its lane if it unwinds (a backend that
/// panicked), so that later callers start flushers again.
struct Unwinding(Option<usize>);

impl Drop for Unwinding {
    fn drop(&mut self) {
        if let Some(key) = self.0
            && let Some(lane) = lanes().get_mut(&key)
        {
            lane.flushers -= 1;
        }
    }
}

/// Sends the lane's waiting jobs in batches until none is left.
fn flush(key: usize, backend: &dyn BaseQueue) {
    let mut unwinding = Unwinding(Some(key));
    loop {
        let batch: Vec<(NewJob, Reply)> = {
            let mut lanes = lanes();
            let Some(lane) = lanes.get_mut(&key) else {
                return;
            };
            if lane.waiting.is_empty() {
                unwinding.0 = None;
                lane.flushers -= 1;
                if lane.flushers == 0 {
                    lanes.remove(&key);
                }
                return;
            }
            let take = lane.waiting.len().min(BATCH);
            lane.waiting.drain(..take).collect()
        };
        send(backend, batch);
    }
}

fn send(backend: &dyn BaseQueue, batch: Vec<(NewJob, Reply)>) {
    if batch.len() == 1 {
        let (job, reply) = batch.into_iter().next().expect("one job");
        let _ = reply.send(backend.enqueue(job));
        return;
    }
    let (jobs, replies): (Vec<NewJob>, Vec<Reply>) = batch.into_iter().unzip();
    match backend.enqueue_many(jobs.clone()) {
        Ok(ids) if ids.len() == replies.len() => {
            for (reply, id) in replies.into_iter().zip(ids) {
                let _ = reply.send(Ok(id));
            }
        }
        Ok(ids) => {
            let error = format!(
                "enqueue_many returned {} ids for {} jobs",
                ids.len(),
                replies.len()
            );
            for reply in replies {
                let _ = reply.send(Err(Error::backend(error.clone())));
            }
        }
        Err(error) if error.is_retryable() => {
            let error = error.to_string();
            for reply in replies {
                let _ = reply.send(Err(Error::unavailable(error.clone())));
            }
        }
        Err(_) => {
            for (job, reply) in jobs.into_iter().zip(replies) {
                let _ = reply.send(backend.enqueue(job));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryQueue, When};

    fn job(command: &str) -> NewJob {
        NewJob {
            command: command.to_owned(),
            args: crate::codec::encode(&()).unwrap(),
            queue: "coalesce".to_owned(),
            key: None,
            priority: 0,
            max_attempts: 1,
            when: When::Now,
            timeout: None,
            unique: None,
            concurrency: None,
            rate: None,
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        futures_lite::future::block_on(future)
    }

    #[test]
    fn jobs_awaited_together_are_all_stored_with_their_own_ids() {
        let backend: Arc<dyn BaseQueue> = Arc::new(MemoryQueue::new());
        let key = Arc::as_ptr(&backend).cast::<()>() as usize;
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let backend = Arc::clone(&backend);
                std::thread::spawn(move || block_on(enqueue(key, backend, job(&format!("c{i}")))))
            })
            .collect();
        let mut ids: Vec<JobId> = calls
            .into_iter()
            .map(|c| c.join().unwrap().unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let stored = backend.job(*id).unwrap().unwrap();
            assert_eq!(
                stored.command,
                format!("c{i}"),
                "each caller got its own job's id"
            );
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 200);
        assert_eq!(backend.len("coalesce").unwrap(), 200);
        // the last flusher removes the lane after it replied
        outband_testkit::wait_until("the idle lane is gone", None, || {
            lanes().get(&key).is_none()
        });
    }

    #[test]
    fn an_invalid_job_fails_alone() {
        let backend: Arc<dyn BaseQueue> = Arc::new(MemoryQueue::new());
        let key = Arc::as_ptr(&backend).cast::<()>() as usize;
        let error = block_on(enqueue(key, Arc::clone(&backend), job(""))).unwrap_err();
        assert!(matches!(error, Error::InvalidJob(_)), "{error}");
        block_on(enqueue(key, Arc::clone(&backend), job("fine"))).unwrap();
        assert_eq!(backend.len("coalesce").unwrap(), 1);
    }
}
