//! Concurrency limits where the conformance suite does not reach: the
//! running and parked sets in Redis, which a lease recovered by another
//! handle, a cancel and a flush each leave as they should.

mod support;

use std::time::Duration;

use outband::test_suite::echo;
use outband::{BaseQueue, Concurrency, JobId, NewJob, Outcome};
use outband_redis::{RedisOptions, RedisQueue};

const LEASE: Duration = Duration::from_secs(60);

fn limited(queue: &str, n: u64, key: &str, max: u32) -> NewJob {
    NewJob::new(echo::NAME, outband::codec::encode(&(n,)).expect("encodes"))
        .queue(queue)
        .concurrency(Concurrency::new(key, max))
}

/// How many jobs the running set and the parked set of `key` hold.
fn sizes(backend: &RedisQueue, key: &str) -> (u64, u64) {
    let (running, parked) = outband_redis::limit_keys_of(backend, key);
    outband_redis::with_connection(backend, |con| {
        let running: u64 = redis::cmd("SCARD").arg(&running).query(con)?;
        let parked: u64 = redis::cmd("ZCARD").arg(&parked).query(con)?;
        Ok((running, parked))
    })
    .expect("SCARD and ZCARD")
}

fn ids(claimed: &[outband::Claimed]) -> Vec<JobId> {
    claimed.iter().map(|c| c.job.id).collect()
}

/// A consumer dies holding the key's one slot; another handle on the
/// namespace recovers the lease, which gives the slot to the parked job.
#[test]
fn a_recovered_lease_gives_its_slot_back_across_handles() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let first = &scoped.backend;
    let second = RedisQueue::with_options(
        &support::redis_url(),
        RedisOptions::default().namespace(scoped.namespace.clone()),
    )
    .expect("connects");
    let a = first
        .enqueue(limited("lost", 1, "api", 1))
        .expect("enqueue");
    let b = second
        .enqueue(limited("lost", 2, "api", 1))
        .expect("enqueue");

    let lost = first
        .claim("lost", 1, Duration::from_millis(50))
        .expect("claim");
    assert_eq!(ids(&lost), vec![a]);
    assert!(second.claim("lost", 10, LEASE).expect("claim").is_empty());
    assert_eq!(sizes(first, "api"), (1, 1), "one running, one parked");

    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(second.recover_expired().expect("recover").requeued, 1);
    assert_eq!(
        sizes(first, "api"),
        (0, 0),
        "the slot went back, b is ready"
    );
    assert!(
        second.has_jobs_waiting("lost").expect("probe"),
        "the parked job is ready again"
    );
    let retaken = second.claim("lost", 10, LEASE).expect("claim");
    assert_eq!(retaken.len(), 1, "one slot: {retaken:?}");
    assert!([a, b].contains(&retaken[0].job.id));
    assert_eq!(sizes(first, "api"), (1, 1));
}

/// A cancelled and a flushed parked job leave the parked set; the running
/// job's end then finds nothing to hand its slot to.
#[test]
fn cancel_and_flush_leave_no_parked_entries() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let jobs: Vec<JobId> = (0..4)
        .map(|n| {
            backend
                .enqueue(limited("parked", n, "db", 1))
                .expect("enqueue")
        })
        .collect();
    let running = backend.claim("parked", 10, LEASE).expect("claim");
    assert_eq!(ids(&running), vec![jobs[0]]);
    assert_eq!(sizes(backend, "db"), (1, 3));
    assert_eq!(
        backend.len("parked").expect("len"),
        3,
        "parked jobs are pending"
    );

    backend.cancel(jobs[2], "not needed").expect("cancel");
    assert_eq!(sizes(backend, "db"), (1, 2), "the cancelled job left");
    assert_eq!(backend.flush("parked").expect("flush"), 2);
    assert_eq!(sizes(backend, "db"), (1, 0), "the flushed jobs left");
    assert_eq!(backend.len("parked").expect("len"), 0);

    let done = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    backend.complete(&running[0].lease, done).expect("complete");
    assert_eq!(sizes(backend, "db"), (0, 0));
    assert!(!backend.has_jobs_waiting("parked").expect("probe"));
    assert!(
        backend
            .claim("parked", 10, LEASE)
            .expect("claim")
            .is_empty()
    );
}
