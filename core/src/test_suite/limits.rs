//! Concurrency and rate limits: a claim never starts a job whose key has
//! `max` jobs running, or whose turn has not come, passes such a job over
//! for the jobs after it, and starts it once a running job of its key leaves
//! `running`, however it leaves, or once its turn comes.
//!
//! A backend that does not say
//! [`Capabilities::concurrency_limits`](crate::Capabilities::concurrency_limits)
//! or [`rate_limits`](crate::Capabilities::rate_limits) skips the cases of
//! that limit: outband's enqueues refuse such jobs on it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::{LEASE, assert_wait_holds, claim_ids, claim_one, done, echo_job, unique_queue};
use crate::{BaseQueue, Claimed, Completion, Concurrency, JobId, NewJob, Outcome, RateLimit};

fn limited(queue: &str, value: u64, key: &str, max: u32) -> NewJob {
    echo_job(queue, value).concurrency(Concurrency::new(key, max))
}

fn enforces(backend: &Arc<dyn BaseQueue>) -> bool {
    let yes = backend.capabilities().concurrency_limits;
    if !yes {
        eprintln!("skipped: this backend does not enforce concurrency limits");
    }
    yes
}

fn set(ids: impl IntoIterator<Item = JobId>) -> BTreeSet<JobId> {
    ids.into_iter().collect()
}

/// A key's `max` jobs run at once, across queues; the jobs past the limit
/// are passed over, so that free jobs after them (lower priorities
/// included) are claimed, and a wait does not end for them; a job that
/// ends, one that fails into a retry, and one whose lease is recovered each
/// give their slot back, to the next job of the key in claim order.
pub fn concurrency_limits_cap_running_jobs(backend: &Arc<dyn BaseQueue>) {
    if !enforces(backend) {
        return;
    }
    let q = unique_queue("limits");
    let elsewhere = unique_queue("limits-elsewhere");
    let key = format!("{q}:api");
    let enqueue = |job| backend.enqueue(job).expect("enqueue");
    let l: Vec<JobId> = (1..=4)
        .map(|n| enqueue(limited(&q, n, &key, 2).priority(5)))
        .collect();
    let free: Vec<JobId> = (0..2).map(|n| enqueue(echo_job(&q, 10 + n))).collect();
    let across = enqueue(limited(&elsewhere, 20, &key, 2));

    let first = backend.claim(&q, 10, LEASE).expect("claim");
    assert_eq!(
        set(first.iter().map(|c| c.job.id)),
        set([l[0], l[1], free[0], free[1]]),
        "two limited jobs, and the free ones after the rest"
    );
    let kept = Some(Concurrency::new(key.as_str(), 2));
    for claimed in &first {
        let expected = if free.contains(&claimed.job.id) {
            None
        } else {
            kept.clone()
        };
        assert_eq!(
            claimed.job.concurrency, expected,
            "a claimed job keeps its limit"
        );
    }
    assert_eq!(
        backend
            .job(l[3])
            .expect("job")
            .expect("pending")
            .concurrency,
        kept,
        "a pending job keeps its limit"
    );
    assert!(claim_ids(&**backend, &q, 10).is_empty(), "the key is full");
    assert!(
        claim_ids(&**backend, &elsewhere, 10).is_empty(),
        "the key is full in every queue"
    );
    assert_eq!(backend.len(&q).expect("len"), 2, "the rest stay pending");

    assert_wait_holds(
        &**backend,
        &q,
        "a queue whose ready jobs are all over their limit",
    );

    let by_id = |id: JobId| first.iter().find(|c| c.job.id == id).expect("claimed");
    done(&**backend, by_id(l[0]));
    assert_eq!(
        claim_ids(&**backend, &q, 10),
        vec![l[2]],
        "a job that ends gives its slot to the next job of the key"
    );

    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "again".into(),
    };
    assert_eq!(
        backend.complete(&by_id(l[1]).lease, retry).expect("retry"),
        Completion::Applied
    );
    let again = backend.claim(&q, 10, LEASE).expect("claim");
    assert_eq!(
        again.len(),
        1,
        "a retried job gave its slot back: {again:?}"
    );
    assert!(
        claim_ids(&**backend, &q, 10).is_empty(),
        "and took one slot, or its successor did"
    );
    for claimed in &first {
        if free.contains(&claimed.job.id) {
            done(&**backend, claimed);
        }
    }
    for claimed in again {
        done(&**backend, &claimed);
    }
    assert_eq!(
        claim_ids(&**backend, &q, 10).len(),
        1,
        "the last job of the key takes the slot the retried one gave back"
    );

    // a consumer that dies gives its slot back when its lease is recovered
    let lone = format!("{q}:lone");
    let short = enqueue(limited(&q, 30, &lone, 1).priority(9));
    let next = enqueue(limited(&q, 31, &lone, 1).priority(9));
    let lost = claim_one(&**backend, &q, Duration::from_millis(50)).expect("claimed");
    assert_eq!(lost.job.id, short);
    assert!(
        !claim_ids(&**backend, &q, 10).contains(&next),
        "one at a time"
    );
    std::thread::sleep(Duration::from_millis(120));
    let recovered = backend.recover_expired().expect("recover");
    assert_eq!(recovered.requeued, 1, "{recovered:?}");
    let retaken = claim_ids(&**backend, &q, 10);
    assert_eq!(
        retaken
            .iter()
            .filter(|&&id| id == short || id == next)
            .count(),
        1,
        "the recovered slot goes to one job of the key: {retaken:?}"
    );
    let _ = across;
}

/// Eight threads claiming and completing jobs of one key, limited to 3, as
/// fast as they can, with `claim` and with `complete_and_claim`: never more
/// than 3 of them hold a job at once, and every job is done.
pub fn concurrency_limits_hold_under_racing_claims(backend: &Arc<dyn BaseQueue>) {
    if !enforces(backend) {
        return;
    }
    const JOBS: u64 = 48;
    const MAX: usize = 3;
    let q = unique_queue("limits-race");
    let key = format!("{q}:api");
    let jobs = (0..JOBS)
        .map(|n| limited(&q, n, &key, MAX as u32))
        .collect();
    backend.enqueue_many(jobs).expect("enqueue");

    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(8));
    let deadline = Instant::now() + Duration::from_secs(60);
    let racers: Vec<_> = (0..8)
        .map(|racer| {
            let backend = Arc::clone(backend);
            let (q, holding, most, finished, failed, barrier) = (
                q.clone(),
                Arc::clone(&holding),
                Arc::clone(&most),
                Arc::clone(&finished),
                Arc::clone(&failed),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let mut held: Vec<Claimed> = Vec::new();
                while finished.load(Ordering::SeqCst) < JOBS as usize
                    && Instant::now() < deadline
                    && !failed.load(Ordering::SeqCst)
                {
                    let now = holding.fetch_add(held.len(), Ordering::SeqCst) + held.len();
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    holding.fetch_sub(held.len(), Ordering::SeqCst);
                    let ended = held.len();
                    let outcomes = held
                        .drain(..)
                        .map(|c| {
                            let outcome = Outcome::Done {
                                result: None,
                                duration: Duration::from_millis(2),
                            };
                            (c.lease, outcome)
                        })
                        .collect::<Vec<_>>();
                    let claimed = if racer % 2 == 0 {
                        let (completions, claimed) = backend
                            .complete_and_claim(outcomes, &q, 2, LEASE)
                            .expect("complete and claim");
                        if completions.iter().any(|c| *c != Completion::Applied) {
                            failed.store(true, Ordering::SeqCst);
                        }
                        claimed
                    } else {
                        for (lease, outcome) in outcomes {
                            if backend.complete(&lease, outcome).expect("complete")
                                != Completion::Applied
                            {
                                failed.store(true, Ordering::SeqCst);
                            }
                        }
                        backend.claim(&q, 2, LEASE).expect("claim")
                    };
                    finished.fetch_add(ended, Ordering::SeqCst);
                    held = claimed;
                }
                held
            })
        })
        .collect();
    for racer in racers {
        let held = racer.join().expect("racer");
        assert!(held.is_empty(), "a racer stopped holding {held:?}");
    }
    assert!(!failed.load(Ordering::SeqCst), "a completion was refused");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        JOBS as usize,
        "every job is done"
    );
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=MAX).contains(&most),
        "{most} jobs of a key limited to {MAX} were held at once"
    );
    assert_eq!(backend.stats(&q).expect("stats").done, JOBS);
}

fn rated(queue: &str, value: u64, key: &str, max: u32, per: Duration) -> NewJob {
    echo_job(queue, value).rate(RateLimit::new(key, max, per))
}

fn enforces_rates(backend: &Arc<dyn BaseQueue>) -> bool {
    let yes = backend.capabilities().rate_limits;
    if !yes {
        eprintln!("skipped: this backend does not enforce rate limits");
    }
    yes
}

/// A key's burst starts at once and the rest wait their turn, across
/// queues; jobs after them (lower priorities included) are claimed; a wait
/// does not end at once for jobs whose turn has not come, and the next job
/// of the key starts no sooner than the interval after the burst.
pub fn rate_limits_space_starts(backend: &Arc<dyn BaseQueue>) {
    if !enforces_rates(backend) {
        return;
    }
    let q = unique_queue("rates");
    let elsewhere = unique_queue("rates-elsewhere");
    let key = format!("{q}:api");
    // 30 per minute: one every 2 s, a burst of 3
    let per = Duration::from_secs(60);
    let enqueue = |job| backend.enqueue(job).expect("enqueue");
    let r: Vec<JobId> = (0..5)
        .map(|n| enqueue(rated(&q, n, &key, 30, per).priority(5)))
        .collect();
    let free: Vec<JobId> = (0..2).map(|n| enqueue(echo_job(&q, 10 + n))).collect();
    enqueue(rated(&elsewhere, 20, &key, 30, per));

    let started = Instant::now();
    let first = backend.claim(&q, 10, LEASE).expect("claim");
    assert_eq!(
        set(first.iter().map(|c| c.job.id)),
        set([r[0], r[1], r[2], free[0], free[1]]),
        "the burst of three, and the free jobs after the rest"
    );
    let kept = Some(RateLimit::new(key.as_str(), 30, per));
    for claimed in &first {
        let expected = if free.contains(&claimed.job.id) {
            None
        } else {
            kept.clone()
        };
        assert_eq!(claimed.job.rate, expected, "a claimed job keeps its rate");
    }
    assert_eq!(
        backend.job(r[4]).expect("job").expect("pending").rate,
        kept,
        "a pending job keeps its rate"
    );
    assert!(
        claim_ids(&**backend, &q, 10).is_empty(),
        "the burst is spent"
    );
    assert!(
        claim_ids(&**backend, &elsewhere, 10).is_empty(),
        "in every queue"
    );
    assert_wait_holds(
        &**backend,
        &q,
        "a queue whose ready jobs all wait their turn",
    );
    for claimed in &first {
        done(&**backend, claimed);
    }

    let deadline = started + Duration::from_secs(30);
    let next = loop {
        let claimed = claim_ids(&**backend, &q, 10);
        if !claimed.is_empty() {
            break claimed;
        }
        assert!(Instant::now() < deadline, "the next turn never came");
        backend
            .wait(std::slice::from_ref(&q), Duration::from_millis(500))
            .expect("wait");
    };
    assert_eq!(next, vec![r[3]], "one turn: the next job in claim order");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "the fourth start came {:?} after the burst, under the 2 s interval",
        started.elapsed()
    );
}

/// A processor runs every job of a rate-limited key, at no more than its
/// rate: 12 jobs at 20 per second (a burst of 2, then one every 50 ms) take
/// at least 500 ms.
pub fn processors_follow_rate_limits(backend: &Arc<dyn BaseQueue>) {
    if !enforces_rates(backend) {
        return;
    }
    let q = unique_queue("rates-processor");
    let key = format!("{q}:api");
    let jobs = (0..12)
        .map(|n| rated(&q, n, &key, 20, Duration::from_secs(1)))
        .collect();
    let started = Instant::now();
    backend.enqueue_many(jobs).expect("enqueue");
    let processor = super::async_jobs::start(backend, &q, |config| config.max_threads(4));
    super::async_jobs::wait_for("the rate-limited jobs to be done", || {
        backend.stats(&q).expect("stats").done == 12
    });
    let took = started.elapsed();
    processor.stop();
    assert!(
        took >= Duration::from_millis(500),
        "12 jobs at 20/s ran in {took:?}"
    );
}

/// Limits and the claim's other rules hold together: among limited jobs,
/// higher priorities start first and an ordering key still lets one job of
/// its line run at a time, in enqueue order; a freed slot goes to a job
/// both rules allow.
pub fn limits_keep_priorities_and_ordering_keys(backend: &Arc<dyn BaseQueue>) {
    if !enforces(backend) {
        return;
    }
    let q = unique_queue("limits-order");
    let key = format!("{q}:api");
    let enqueue = |job| backend.enqueue(job).expect("enqueue");
    let first_in_line = enqueue(limited(&q, 1, &key, 2).key("line"));
    let second_in_line = enqueue(limited(&q, 2, &key, 2).key("line"));
    let urgent = enqueue(limited(&q, 3, &key, 2).priority(5));
    let last = enqueue(limited(&q, 4, &key, 2));

    let first = backend.claim(&q, 10, LEASE).expect("claim");
    assert_eq!(
        set(first.iter().map(|c| c.job.id)),
        set([urgent, first_in_line]),
        "the higher priority, and the head of the ordering key's line"
    );
    let by_id = |id: JobId| first.iter().find(|c| c.job.id == id).expect("claimed");
    done(&**backend, by_id(first_in_line));
    // the line's next job and the job passed over are both ready now: the
    // contract orders ready jobs of one priority by when they became ready
    // on some backends, by id on others, so either may take the slot
    let next = claim_ids(&**backend, &q, 10);
    assert_eq!(next.len(), 1, "one slot was freed: {next:?}");
    assert!(
        next[0] == second_in_line || next[0] == last,
        "the freed slot goes to a job both rules allow: {next:?}"
    );
    done(&**backend, by_id(urgent));
    let other = if next[0] == last {
        second_in_line
    } else {
        last
    };
    assert_eq!(claim_ids(&**backend, &q, 10), vec![other]);
}
