//! Enqueue: batches are all or nothing and store each job as `enqueue` alone
//! would; pending jobs are counted, cancelled and flushed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{HOUR, LEASE, claim_ids, claim_one, done, echo, echo_job, fail, unique_queue};
use crate::{BaseQueue, Cancellation, Completion, JobId, JobState, NewJob, Outcome, codec};

/// A batch with one bad job stores nothing; a good batch stores all, in order.
pub fn enqueue_many_all_or_nothing(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("batch");
    let bad_batches = [
        vec![echo_job(&q, 1), echo_job(&q, 2).max_attempts(0)],
        vec![echo_job(&q, 1), NewJob::new("", vec![1]).queue(q.clone())],
        vec![echo_job(&q, 1), echo_job("", 2)],
        vec![
            echo_job(&q, 1),
            NewJob::new(echo::NAME, vec![0; codec::max_payload() + 1]).queue(q.clone()),
        ],
    ];
    for batch in bad_batches {
        assert!(
            backend.enqueue_many(batch).is_err(),
            "a batch with a bad job must fail"
        );
        assert_eq!(
            backend.len(&q).expect("len"),
            0,
            "a failed batch must store nothing"
        );
    }
    let ids = backend
        .enqueue_many((0..50).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    assert_eq!(ids.len(), 50);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        50,
        "ids are unique"
    );
    assert_eq!(backend.len(&q).expect("len"), 50);
    assert_eq!(
        claim_ids(&**backend, &q, 50),
        ids,
        "batch order is enqueue order"
    );
    assert!(
        backend
            .enqueue_many(Vec::new())
            .expect("empty batch")
            .is_empty()
    );
}

/// A batch of unlike jobs (commands, priorities, ordering keys, schedules,
/// attempt limits; one queue, as a cluster needs) stores each job as an
/// `enqueue` of it alone would, and they become ready as if enqueued one at a
/// time in the batch's order.
pub fn enqueue_many_unlike_jobs(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("unlike");
    let alone = unique_queue("unlike-alone");
    let fail_job = |queue: &str| {
        NewJob::new(fail::NAME, codec::encode(&("no",)).expect("encodes"))
            .queue(queue)
            .max_attempts(2)
    };
    let jobs = |queue: &str| {
        vec![
            echo_job(queue, 0),
            echo_job(queue, 1),
            echo_job(queue, 2).priority(5),
            echo_job(queue, 3).key("k"),
            echo_job(queue, 4).key("k"),
            echo_job(queue, 5).when(HOUR),
            fail_job(queue),
            fail_job(queue),
            echo_job(queue, 6).priority(-2),
            echo_job(queue, 7),
        ]
    };
    let before = backend.now().expect("now") - Duration::from_secs(1);
    let ids = backend.enqueue_many(jobs(&q)).expect("enqueue");
    let alone_ids: Vec<JobId> = jobs(&alone)
        .into_iter()
        .map(|job| backend.enqueue(job).expect("enqueue"))
        .collect();
    let after = backend.now().expect("now") + Duration::from_secs(1);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    for ((id, alone_id), given) in ids.iter().zip(&alone_ids).zip(jobs(&q)) {
        let stored = backend.job(*id).expect("job").expect("stored");
        let stored_alone = backend.job(*alone_id).expect("job").expect("stored");
        let fields = |job: &crate::Job| {
            (
                job.command.clone(),
                job.args.clone(),
                job.key.clone(),
                job.priority,
                job.attempt,
                job.max_attempts,
                job.state,
            )
        };
        assert_eq!(stored.queue, q);
        assert_eq!(stored_alone.queue, alone);
        assert_eq!(fields(&stored), fields(&stored_alone), "job {id}");
        assert_eq!(
            (&stored.command, &stored.args, &stored.key, stored.priority),
            (&given.command, &given.args, &given.key, given.priority),
            "job {id} as given"
        );
        assert_eq!(stored.max_attempts, given.max_attempts, "job {id}");
        assert_eq!(stored.state, JobState::Pending, "job {id}");
        for job in [&stored, &stored_alone] {
            let enqueued = job.enqueued_at;
            assert!(before <= enqueued && enqueued <= after, "{job:?}");
            let run_at = given.when.resolve(enqueued);
            let off = job
                .run_at
                .max(run_at)
                .duration_since(job.run_at.min(run_at));
            assert!(off.unwrap_or_default() < Duration::from_secs(2), "{job:?}");
        }
    }
    let expected = |ids: &[JobId]| {
        vec![
            ids[2], ids[0], ids[1], ids[3], ids[6], ids[7], ids[9], ids[8],
        ]
    };
    assert_eq!(backend.len(&q).expect("len"), 10);
    assert_eq!(claim_ids(&**backend, &q, 20), expected(&ids));
    assert_eq!(claim_ids(&**backend, &alone, 20), expected(&alone_ids));
    assert_eq!(
        backend.len(&q).expect("len"),
        2,
        "the second job of key k and the scheduled one stay pending"
    );
}

/// `len` counts pending jobs; `cancel` removes one pending job; `flush`
/// removes every pending one; `stats` counts every state.
pub fn cancel_flush_len_stats(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("counts");
    let ids = backend
        .enqueue_many((0..6).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    assert_eq!(backend.len(&q).expect("len"), 6);
    assert!(!backend.is_empty(&q).expect("is_empty"));
    assert_eq!(
        backend.cancel(ids[5], "not wanted").expect("cancel"),
        Cancellation::Cancelled
    );
    assert_eq!(
        backend.job(ids[5]).expect("job").map(|job| job.state),
        Some(JobState::Cancelled),
        "a cancelled job is kept"
    );
    assert_eq!(backend.len(&q).expect("len"), 5);

    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    let finished = claim_one(&**backend, &q, LEASE).expect("claimed");
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(20),
    };
    backend
        .complete(&finished.lease, outcome)
        .expect("complete");
    let failed = claim_one(&**backend, &q, LEASE).expect("claimed");
    backend
        .complete(&failed.lease, Outcome::Dead { error: "x".into() })
        .expect("complete");

    let stats = backend.stats(&q).expect("stats");
    assert_eq!(
        (
            stats.pending,
            stats.running,
            stats.done,
            stats.dead,
            stats.cancelled
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(stats.p50_run_time, Some(Duration::from_millis(20)));
    assert_eq!(stats.mean_run_time, Some(Duration::from_millis(20)));
    assert!(stats.throughput > 0.0, "one job done in the last minute");
    assert!(backend.queues().expect("queues").contains(&q));

    assert_eq!(backend.flush(&q).expect("flush"), 2);
    assert_eq!(backend.len(&q).expect("len"), 0);
    assert!(backend.is_empty(&q).expect("is_empty"));
    let stats = backend.stats(&q).expect("stats");
    assert_eq!(
        (
            stats.pending,
            stats.running,
            stats.done,
            stats.dead,
            stats.cancelled
        ),
        (0, 1, 1, 1, 1)
    );
    done(&**backend, &running);
    assert_eq!(
        backend.stats(&unique_queue("none")).expect("stats"),
        crate::QueueStats::default()
    );
}

/// A job's own timeout is stored to the millisecond, through `enqueue`
/// and `enqueue_many` alike, handed over by every claim and kept by a
/// retry and by `done`; one under a millisecond is refused.
pub fn timeouts_are_stored(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("timeout");
    let refused = backend.enqueue(echo_job(&q, 0).timeout(Duration::from_micros(500)));
    assert!(
        matches!(refused, Err(crate::Error::InvalidJob(_))),
        "{refused:?}"
    );
    assert_eq!(backend.len(&q).expect("len"), 0, "nothing stored");

    let alone = backend
        .enqueue(echo_job(&q, 1).timeout(Duration::from_millis(1500)))
        .expect("enqueue");
    let batch = backend
        .enqueue_many(vec![
            echo_job(&q, 2),
            echo_job(&q, 3).timeout(Duration::from_micros(2_000_700)),
            echo_job(&q, 4).timeout(Duration::from_secs(86_400 * 365)),
        ])
        .expect("enqueue_many");
    let expected = [
        (alone, Some(Duration::from_millis(1500))),
        (batch[0], None),
        (batch[1], Some(Duration::from_millis(2000))),
        (batch[2], Some(Duration::from_secs(86_400 * 365))),
    ];
    for (id, timeout) in expected {
        let job = backend.job(id).expect("job").expect("exists");
        assert_eq!(job.timeout, timeout, "job {id} as stored");
    }
    let claimed = backend.claim(&q, 10, LEASE).expect("claim");
    assert_eq!(claimed.len(), 4);
    for (claimed, (id, timeout)) in claimed.iter().zip(expected) {
        assert_eq!(claimed.job.id, id);
        assert_eq!(claimed.job.timeout, timeout, "job {id} as claimed");
    }
    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "again".into(),
    };
    assert_eq!(
        backend
            .complete(&claimed[0].lease, retry)
            .expect("complete"),
        Completion::Applied
    );
    let again = backend.claim(&q, 1, LEASE).expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.id, alone);
    assert_eq!(again[0].job.timeout, Some(Duration::from_millis(1500)));
    let done = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    assert_eq!(
        backend.complete(&again[0].lease, done).expect("complete"),
        Completion::Applied
    );
    let job = backend.job(alone).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.timeout),
        (JobState::Done, Some(Duration::from_millis(1500)))
    );
}

/// `estimate_stats` counts each state exactly up to its bound; above it a
/// count is exact or an estimate above the bound, listed in `estimated`.
pub fn estimate_stats_bounds(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("estimates");
    backend
        .enqueue_many((0..12).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    let finished = claim_one(&**backend, &q, LEASE).expect("claimed");
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(20),
    };
    backend
        .complete(&finished.lease, outcome)
        .expect("complete");
    let counts = |stats: &crate::QueueStats| JobState::ALL.map(|state| stats.count(state));

    let exact = backend.stats(&q).expect("stats");
    assert_eq!(counts(&exact), [11, 0, 1, 0, 0]);
    assert!(exact.estimated.is_empty(), "stats counts exactly");
    let roomy = backend.estimate_stats(&q, 100).expect("estimate_stats");
    assert_eq!(counts(&roomy), counts(&exact), "under the bound, exact");
    assert!(roomy.estimated.is_empty());
    assert_eq!(roomy.p50_run_time, Some(Duration::from_millis(20)));

    let tight = backend.estimate_stats(&q, 5).expect("estimate_stats");
    for state in JobState::ALL {
        let (n, truth) = (tight.count(state), exact.count(state));
        if tight.is_estimated(state) {
            assert!(truth > 5 && n > 5, "{state:?}: estimated {n} for {truth}");
        } else {
            assert_eq!(n, truth, "{state:?}: not estimated, so exact");
        }
    }
}
