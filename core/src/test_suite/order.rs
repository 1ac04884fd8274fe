//! Claim order: enqueue order within a priority, higher priority first, a
//! batch claim in the same order, and no job claimed twice under contention.

use std::collections::HashSet;
use std::sync::Arc;

use super::{LEASE, claim_ids, claim_one, done, echo_job, unique_queue};
use crate::{BaseQueue, JobId, JobState};

/// Jobs of equal priority are claimed in enqueue order, one at a time.
pub fn fifo_order(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("fifo");
    let ids: Vec<JobId> = (0..20)
        .map(|i| backend.enqueue(echo_job(&q, i)).expect("enqueue"))
        .collect();
    let mut claimed = Vec::new();
    while let Some(job) = claim_one(&**backend, &q, LEASE) {
        assert_eq!(job.job.state, JobState::Running);
        claimed.push(job.job.id);
    }
    assert_eq!(claimed, ids, "claims must follow enqueue order");
}

/// Higher priority is claimed first; equal priorities keep enqueue order.
pub fn priority_order(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("priority");
    let low = backend.enqueue(echo_job(&q, 1)).expect("enqueue");
    let high_a = backend
        .enqueue(echo_job(&q, 2).priority(10))
        .expect("enqueue");
    let mid = backend
        .enqueue(echo_job(&q, 3).priority(5))
        .expect("enqueue");
    let high_b = backend
        .enqueue(echo_job(&q, 4).priority(10))
        .expect("enqueue");
    let negative = backend
        .enqueue(echo_job(&q, 5).priority(-3))
        .expect("enqueue");
    let order: Vec<JobId> =
        std::iter::from_fn(|| claim_one(&**backend, &q, LEASE).map(|c| c.job.id)).collect();
    assert_eq!(order, vec![high_a, high_b, mid, low, negative]);
}

/// A claim of several jobs takes them in the same order, and no more than asked.
pub fn batch_claim_order(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("batch-claim");
    let ids = backend
        .enqueue_many((0..10).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    assert_eq!(claim_ids(&**backend, &q, 4), ids[..4]);
    assert_eq!(claim_ids(&**backend, &q, 100), ids[4..]);
    assert!(claim_ids(&**backend, &q, 100).is_empty());
    assert!(claim_ids(&**backend, &q, 0).is_empty());
}

/// 8 threads racing over 10,000 jobs: each job is claimed exactly once.
pub fn no_double_claim(backend: &Arc<dyn BaseQueue>) {
    const JOBS: u64 = 10_000;
    let q = unique_queue("race");
    for batch in 0..10 {
        let jobs = (0..JOBS / 10)
            .map(|i| echo_job(&q, batch * 1000 + i))
            .collect();
        backend.enqueue_many(jobs).expect("enqueue");
    }
    let claimed: Vec<Vec<JobId>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (backend, q) = (&backend, &q);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let batch = backend
                            .claim(q, fastrand::usize(1..=8), LEASE)
                            .expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        for claimed in batch {
                            done(&**backend, &claimed);
                            mine.push(claimed.job.id);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let all: Vec<JobId> = claimed.into_iter().flatten().collect();
    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len() as u64, JOBS, "every job claimed once");
    assert_eq!(distinct.len(), all.len(), "no job claimed twice");
    let stats = backend.stats(&q).expect("stats");
    assert_eq!((stats.done, stats.pending, stats.running), (JOBS, 0, 0));
}
