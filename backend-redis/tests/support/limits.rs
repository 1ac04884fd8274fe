//! Concurrency- and rate-limit scenarios that look at the running and
//! parked sets in Redis, run on one server (`limits.rs`) and on a cluster
//! (`cluster.rs`), where the limits' keys are changed in steps of their
//! own.

use std::time::Duration;

use outband::test_suite::echo;
use outband::{BaseQueue, Claimed, Concurrency, JobId, NewJob, Outcome, RateLimit};
use outband_redis::RedisQueue;

const LEASE: Duration = Duration::from_secs(60);

pub fn limited(queue: &str, n: u64, key: &str, max: u32) -> NewJob {
    NewJob::new(echo::NAME, outband::codec::encode(&(n,)).expect("encodes"))
        .queue(queue)
        .concurrency(Concurrency::new(key, max))
}

/// How many jobs the running set and the parked set of `key` hold.
pub fn sizes(backend: &RedisQueue, key: &str) -> (u64, u64) {
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

/// How many jobs are parked on rate key `key`, and whether it has a
/// theoretical arrival time.
fn rate_sizes(backend: &RedisQueue, key: &str) -> (u64, bool) {
    let (tat, parked) = outband_redis::rate_keys_of(backend, key);
    let parked: u64 =
        outband_redis::with_connection(backend, |con| redis::cmd("ZCARD").arg(&parked).query(con))
            .expect("ZCARD");
    let started: bool =
        outband_redis::with_connection(backend, |con| redis::cmd("EXISTS").arg(&tat).query(con))
            .expect("EXISTS");
    (parked, started)
}

/// Jobs of a key allowed one start a minute: one starts, the rest are
/// parked on the key, with their limits read back from their records; a
/// cancelled and a flushed parked job leave the parked set, and nothing is
/// then waiting.
pub fn cancel_and_flush_leave_no_rate_parked_entries(backend: &RedisQueue, queue: &str, key: &str) {
    let rate = RateLimit::new(key, 1, Duration::from_secs(60));
    let jobs: Vec<JobId> = (0..4)
        .map(|n| {
            let job = NewJob::new(echo::NAME, outband::codec::encode(&(n,)).expect("encodes"))
                .queue(queue)
                .rate(rate.clone());
            backend.enqueue(job).expect("enqueue")
        })
        .collect();
    assert_eq!(rate_sizes(backend, key), (0, false), "no turn taken yet");
    let running = backend.claim(queue, 10, LEASE).expect("claim");
    assert_eq!(ids(&running), vec![jobs[0]], "one start a minute");
    assert_eq!(running[0].job.rate.as_ref(), Some(&rate));
    assert_eq!(rate_sizes(backend, key), (3, true));
    let parked = backend.job(jobs[1]).expect("job").expect("stored");
    assert_eq!(parked.rate, Some(rate.clone()), "the rate is stored");
    assert_eq!(parked.concurrency, None);
    assert!(
        !backend.has_jobs_waiting(queue).expect("probe"),
        "parked jobs are not waiting"
    );

    backend.cancel(jobs[2], "not needed").expect("cancel");
    assert_eq!(rate_sizes(backend, key).0, 2, "the cancelled job left");
    assert_eq!(backend.flush(queue).expect("flush"), 2);
    assert_eq!(rate_sizes(backend, key).0, 0, "the flushed jobs left");
    assert_eq!(backend.len(queue).expect("len"), 0);
    assert!(backend.claim(queue, 10, LEASE).expect("claim").is_empty());

    // both limits, read back
    let both = NewJob::new(echo::NAME, outband::codec::encode(&(9,)).expect("encodes"))
        .queue(queue)
        .concurrency(Concurrency::new(format!("{key}-c"), 2))
        .rate(rate.clone());
    let id = backend.enqueue(both).expect("enqueue");
    let stored = backend.job(id).expect("job").expect("stored");
    assert_eq!(
        stored.concurrency,
        Some(Concurrency::new(format!("{key}-c"), 2))
    );
    assert_eq!(stored.rate, Some(rate));
    assert!(
        backend.claim(queue, 10, LEASE).expect("claim").is_empty(),
        "its rate key's turn has not come"
    );
    let (running_c, parked_c) = sizes(backend, &format!("{key}-c"));
    assert_eq!((running_c, parked_c), (0, 0), "no slot is held for it");
    assert_eq!(backend.flush(queue).expect("flush"), 1);
    assert_eq!(rate_sizes(backend, key).0, 0);
}

/// Six handles race to claim and complete jobs of one key allowed 20 starts
/// a second (a burst of 2, then one every 50 ms), as fast as they can: the
/// `k`-th start, on the server's clock, comes no sooner than `k − 1`
/// intervals after the first.
pub fn racing_claims_keep_the_rate(handles: &[RedisQueue], queue: &str, key: &str) {
    const JOBS: usize = 12;
    let rate = RateLimit::new(key, 20, Duration::from_secs(1));
    let jobs = (0..JOBS as u64)
        .map(|n| {
            NewJob::new(echo::NAME, outband::codec::encode(&(n,)).expect("encodes"))
                .queue(queue)
                .rate(rate.clone())
        })
        .collect();
    handles[0].enqueue_many(jobs).expect("enqueue");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let starts = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for handle in handles {
            let starts = &starts;
            scope.spawn(move || {
                while starts.lock().expect("lock").len() < JOBS
                    && std::time::Instant::now() < deadline
                {
                    for claimed in handle.claim(queue, 2, LEASE).expect("claim") {
                        let started = claimed.job.started_at.expect("started");
                        starts.lock().expect("lock").push(started);
                        let done = Outcome::Done {
                            result: None,
                            duration: Duration::ZERO,
                        };
                        handle.complete(&claimed.lease, done).expect("complete");
                    }
                }
            });
        }
    });
    let mut starts = starts.into_inner().expect("lock");
    assert_eq!(starts.len(), JOBS, "every job started");
    starts.sort();
    for (k, start) in starts.iter().enumerate().skip(1) {
        let since = start.duration_since(starts[0]).unwrap_or_default();
        // start times are whole milliseconds
        let least = rate.interval() * (k as u32 - 1);
        assert!(
            since + Duration::from_millis(1) >= least,
            "start {k} came {since:?} after the first, under {least:?}: {starts:?}"
        );
    }
}
