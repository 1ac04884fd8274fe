//! Pausing queues: a paused queue keeps its jobs and takes enqueues, but no
//! claim takes from it until it is resumed, and no wait ends early for it.

use std::sync::Arc;
use std::time::Duration;

use super::async_jobs::{start, wait_for};
use super::{
    LEASE, assert_wait_holds, claim_ids, claim_one, done, echo_job, state_of, unique_queue,
};
use crate::{BaseQueue, Completion, JobState, Outcome};

/// `pause` stops claims on one queue and no other, `resume` lets them go on
/// in order; both say whether they changed anything; `paused` and `stats`
/// show the pause; a running job completes as usual, and the claim half of
/// `complete_and_claim` takes nothing; a queue that holds no job may be
/// paused; waiting on a paused queue with ready jobs does not return at once.
pub fn paused_queues_are_not_claimed(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("paused");
    let other = unique_queue("paused-other");
    let first = backend.enqueue(echo_job(&q, 1)).expect("enqueue");
    let second = backend.enqueue(echo_job(&q, 2)).expect("enqueue");
    let third = backend.enqueue(echo_job(&q, 3)).expect("enqueue");
    let elsewhere = backend.enqueue(echo_job(&other, 4)).expect("enqueue");
    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(running.job.id, first);

    assert!(backend.pause(&q).expect("pause"), "a running queue pauses");
    assert!(
        !backend.pause(&q).expect("pause"),
        "a second pause changes nothing"
    );
    assert!(backend.paused().expect("paused").contains(&q));
    assert!(!backend.paused().expect("paused").contains(&other));
    let stats = backend.stats(&q).expect("stats");
    assert!(stats.paused, "stats show the pause");
    assert_eq!((stats.pending, stats.running), (2, 1));
    assert!(!backend.stats(&other).expect("stats").paused);

    assert!(
        claim_ids(&**backend, &q, 10).is_empty(),
        "nothing is claimed"
    );
    assert!(!backend.has_jobs_waiting(&q).expect("waiting"));
    assert_eq!(claim_ids(&**backend, &other, 10), vec![elsewhere]);
    let late = backend
        .enqueue(echo_job(&q, 5))
        .expect("enqueue to a paused queue");
    assert_eq!(backend.len(&q).expect("len"), 3);

    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    let (completions, claimed) = backend
        .complete_and_claim(vec![(running.lease, outcome)], &q, 10, LEASE)
        .expect("complete and claim");
    assert_eq!(completions, vec![Completion::Applied], "a running job ends");
    assert!(claimed.is_empty(), "the claim half takes nothing");
    assert_eq!(state_of(&**backend, first), JobState::Done);

    assert_wait_holds(&**backend, &q, "a paused queue with ready jobs");

    assert!(
        backend.resume(&q).expect("resume"),
        "a paused queue resumes"
    );
    assert!(
        !backend.resume(&q).expect("resume"),
        "a second resume changes nothing"
    );
    assert!(!backend.paused().expect("paused").contains(&q));
    assert!(!backend.stats(&q).expect("stats").paused);
    assert!(backend.has_jobs_waiting(&q).expect("waiting"));
    assert_eq!(
        claim_ids(&**backend, &q, 10),
        vec![second, third, late],
        "claims go on in order"
    );

    let empty = unique_queue("paused-empty");
    assert!(backend.pause(&empty).expect("pause an unknown queue"));
    assert!(backend.paused().expect("paused").contains(&empty));
    assert!(backend.stats(&empty).expect("stats").paused);
    let job = backend.enqueue(echo_job(&empty, 6)).expect("enqueue");
    assert!(claim_ids(&**backend, &empty, 10).is_empty());
    assert!(backend.resume(&empty).expect("resume"));
    let claimed = claim_one(&**backend, &empty, LEASE).expect("claimed");
    assert_eq!(claimed.job.id, job);
    done(&**backend, &claimed);
}

/// A running processor leaves a paused queue's jobs pending, and runs them
/// once the queue is resumed.
pub fn processors_skip_paused_queues(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("paused-processor");
    assert!(backend.pause(&q).expect("pause"));
    let ids: Vec<_> = (0..3)
        .map(|value| backend.enqueue(echo_job(&q, value)).expect("enqueue"))
        .collect();
    let processor = start(backend, &q, |config| config);
    std::thread::sleep(Duration::from_millis(300));
    for &id in &ids {
        assert_eq!(state_of(&**backend, id), JobState::Pending, "job {id}");
    }
    assert!(backend.resume(&q).expect("resume"));
    wait_for("the resumed queue's jobs to be done", || {
        backend.stats(&q).expect("stats").done == 3
    });
    processor.stop();
}
