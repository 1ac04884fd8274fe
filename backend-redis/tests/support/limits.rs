//! Concurrency-limit scenarios that look at the running and parked sets in
//! Redis, run on one server (`limits.rs`) and on a cluster (`cluster.rs`),
//! where the limit's keys are changed in steps of their own.

use std::time::Duration;

use outband::test_suite::echo;
use outband::{BaseQueue, Claimed, Concurrency, JobId, NewJob, Outcome};
use outband_redis::RedisQueue;

const LEASE: Duration = Duration::from_secs(60);

fn limited(queue: &str, n: u64, key: &str, max: u32) -> NewJob {
    NewJob::new(echo::NAME, outband::codec::encode(&(n,)).expect("encodes"))
        .queue(queue)
        .concurrency(Concurrency::new(key, max))
}

/// How many jobs the running set and the parked set of `key` hold.
fn sizes(backend: &RedisQueue, key: &str) -> (u64, u64) {
    let (running, parked) = outband_redis::limit_keys_of(backend, key);
    let running: u64 =
        outband_redis::with_connection(backend, |con| redis::cmd("SCARD").arg(&running).query(con))
            .expect("SCARD");
    let parked: u64 =
        outband_redis::with_connection(backend, |con| redis::cmd("ZCARD").arg(&parked).query(con))
            .expect("ZCARD");
    (running, parked)
}

fn ids(claimed: &[Claimed]) -> Vec<JobId> {
    claimed.iter().map(|c| c.job.id).collect()
}

/// A consumer of `first` dies holding the key's one slot; `second`, another
/// handle on the namespace, recovers the lease, which gives the slot to
/// the parked job.
pub fn a_recovered_lease_gives_its_slot_back(
    first: &RedisQueue,
    second: &RedisQueue,
    queue: &str,
    key: &str,
) {
    let a = first.enqueue(limited(queue, 1, key, 1)).expect("enqueue");
    let b = second.enqueue(limited(queue, 2, key, 1)).expect("enqueue");

    let lost = first
        .claim(queue, 1, Duration::from_millis(50))
        .expect("claim");
    assert_eq!(ids(&lost), vec![a]);
    assert!(second.claim(queue, 10, LEASE).expect("claim").is_empty());
    assert_eq!(sizes(first, key), (1, 1), "one running, one parked");

    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(second.recover_expired().expect("recover").requeued, 1);
    assert_eq!(sizes(first, key), (0, 0), "the slot went back, b is ready");
    assert!(
        second.has_jobs_waiting(queue).expect("probe"),
        "the parked job is ready again"
    );
    let retaken = second.claim(queue, 10, LEASE).expect("claim");
    assert_eq!(retaken.len(), 1, "one slot: {retaken:?}");
    assert!([a, b].contains(&retaken[0].job.id));
    assert_eq!(sizes(first, key), (1, 1));
    let full = second.claim(queue, 10, LEASE).expect("claim");
    assert!(full.is_empty(), "the key is full, yet {full:?} was claimed");
    let done = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    second.complete(&retaken[0].lease, done).expect("complete");
    let last = second.claim(queue, 10, LEASE).expect("claim");
    assert_eq!(last.len(), 1, "the last job took the slot: {last:?}");
}

/// A cancelled and a flushed parked job leave the parked set; the running
/// job's end then finds nothing to hand its slot to.
pub fn cancel_and_flush_leave_no_parked_entries(backend: &RedisQueue, queue: &str, key: &str) {
    let jobs: Vec<JobId> = (0..4)
        .map(|n| backend.enqueue(limited(queue, n, key, 1)).expect("enqueue"))
        .collect();
    let running = backend.claim(queue, 10, LEASE).expect("claim");
    assert_eq!(ids(&running), vec![jobs[0]]);
    assert_eq!(sizes(backend, key), (1, 3));
    assert_eq!(
        backend.len(queue).expect("len"),
        3,
        "parked jobs are pending"
    );

    backend.cancel(jobs[2], "not needed").expect("cancel");
    assert_eq!(sizes(backend, key), (1, 2), "the cancelled job left");
    assert_eq!(backend.flush(queue).expect("flush"), 2);
    assert_eq!(sizes(backend, key), (1, 0), "the flushed jobs left");
    assert_eq!(backend.len(queue).expect("len"), 0);

    let done = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    backend.complete(&running[0].lease, done).expect("complete");
    assert_eq!(sizes(backend, key), (0, 0));
    assert!(!backend.has_jobs_waiting(queue).expect("probe"));
    assert!(backend.claim(queue, 10, LEASE).expect("claim").is_empty());
}
