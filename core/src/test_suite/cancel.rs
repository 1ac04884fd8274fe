//! Cancelling: a pending job ends `cancelled` at once and hands its key on;
//! a running one is marked, told at its heartbeats, and ends `cancelled`
//! however its attempt ends short of `done` or `dead`; a finished or
//! unknown job is left as it is, and the answer says so; a purge forgets
//! cancelled jobs as it does done ones.

use std::sync::Arc;
use std::time::Duration;

use super::{HOUR, LEASE, claim_ids, claim_one, done, echo_job, unique_queue};
use crate::{BaseQueue, Cancellation, Completion, Heartbeat, JobId, JobState, Outcome};

fn state_and_reason(backend: &dyn BaseQueue, id: JobId) -> (JobState, Option<String>) {
    let job = backend.job(id).expect("job").expect("exists");
    (job.state, job.last_error)
}

/// Ready, scheduled and keyed pending jobs end `cancelled` at once, with
/// when and why; a keyed one lets the next job of its key run; they are
/// counted, never claimed, and a purge forgets them.
pub fn cancel_pending_jobs(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("cancel-pending");
    let ready = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    let later = backend
        .enqueue(echo_job(&q, 1).when(HOUR))
        .expect("enqueue");
    let first = backend.enqueue(echo_job(&q, 2).key("k")).expect("enqueue");
    let second = backend.enqueue(echo_job(&q, 3).key("k")).expect("enqueue");
    let kept = backend.enqueue(echo_job(&q, 4)).expect("enqueue");

    for id in [ready, later, first] {
        assert_eq!(
            backend.cancel(id, "not wanted any more").expect("cancel"),
            Cancellation::Cancelled,
            "job {id}"
        );
        let job = backend.job(id).expect("job").expect("kept");
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(job.last_error.as_deref(), Some("not wanted any more"));
        assert!(job.finished_at.is_some(), "when it was cancelled");
    }
    assert_eq!(
        backend.cancel(ready, "again").expect("cancel"),
        Cancellation::Finished(JobState::Cancelled),
        "cancelling twice changes nothing"
    );
    assert_eq!(
        state_and_reason(&**backend, ready).1.as_deref(),
        Some("not wanted any more")
    );
    assert_eq!(backend.len(&q).expect("len"), 2);
    let stats = backend.stats(&q).expect("stats");
    assert_eq!((stats.pending, stats.cancelled), (2, 3));
    assert_eq!(
        claim_ids(&**backend, &q, 10),
        vec![second, kept],
        "the cancelled jobs never run; the next job of the key does"
    );

    assert_eq!(
        backend
            .cancel(JobId(u64::MAX - 11), "whatever")
            .expect("cancel"),
        Cancellation::NotFound
    );

    // a purge forgets cancelled jobs as it does done ones
    std::thread::sleep(Duration::from_millis(20));
    backend.purge(Duration::from_millis(1)).expect("purge");
    for id in [ready, later, first] {
        assert!(backend.job(id).expect("job").is_none(), "job {id} purged");
    }
    assert_eq!(backend.stats(&q).expect("stats").cancelled, 0);
}

/// A running job is marked and stays running; its heartbeats say so; a
/// retry, a release or an expired lease then ends it `cancelled`, with the
/// reason, while `done` and `dead` stand.
pub fn cancel_running_jobs(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("cancel-running");
    let ids = backend
        .enqueue_many((0..5).map(|i| echo_job(&q, i).max_attempts(3)).collect())
        .expect("enqueue");
    let claimed = backend.claim(&q, 4, LEASE).expect("claim");
    assert_eq!(claimed.len(), 4);
    let expiring = claim_one(&**backend, &q, Duration::ZERO).expect("claimed");
    assert_eq!(expiring.job.id, ids[4]);

    for c in claimed.iter().chain([&expiring]) {
        assert_eq!(
            backend.cancel(c.job.id, "stop it").expect("cancel"),
            Cancellation::Requested
        );
        assert_eq!(state_and_reason(&**backend, c.job.id).0, JobState::Running);
    }
    assert_eq!(
        backend.cancel(ids[0], "stop it twice").expect("cancel"),
        Cancellation::Requested,
        "a second request changes nothing"
    );
    assert!(
        matches!(
            backend
                .heartbeat(&claimed[0].lease, LEASE)
                .expect("heartbeat"),
            Heartbeat::CancelRequested(_)
        ),
        "the worker is told at its heartbeat"
    );

    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "failed".into(),
    };
    let ends = [
        (retry, JobState::Cancelled),
        (Outcome::Release, JobState::Cancelled),
        (
            Outcome::Done {
                result: None,
                duration: Duration::from_millis(1),
            },
            JobState::Done,
        ),
        (
            Outcome::Dead {
                error: "broken".into(),
            },
            JobState::Dead,
        ),
    ];
    for (c, (outcome, state)) in claimed.iter().zip(ends) {
        assert_eq!(
            backend.complete(&c.lease, outcome).expect("complete"),
            Completion::Applied
        );
        let (now, reason) = state_and_reason(&**backend, c.job.id);
        assert_eq!(now, state, "job {}", c.job.id);
        if state == JobState::Cancelled {
            assert_eq!(reason.as_deref(), Some("stop it"));
        }
    }

    let recovered = backend.recover_expired().expect("recover");
    assert_eq!(
        (recovered.requeued, recovered.dead),
        (0, 0),
        "a cancelled job is neither requeued nor dead: {recovered:?}"
    );
    assert_eq!(
        state_and_reason(&**backend, expiring.job.id),
        (JobState::Cancelled, Some("stop it".to_owned()))
    );
    assert!(
        claim_ids(&**backend, &q, 10).is_empty(),
        "nothing runs again"
    );
    let stats = backend.stats(&q).expect("stats");
    assert_eq!(
        (stats.running, stats.done, stats.dead, stats.cancelled),
        (0, 1, 1, 3)
    );
}

/// A done or dead job is left as it is, and the answer names its state.
pub fn cancel_finished_jobs_changes_nothing(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("cancel-finished");
    let finished = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    let failed = backend.enqueue(echo_job(&q, 1)).expect("enqueue");
    let c = claim_one(&**backend, &q, LEASE).expect("claimed");
    done(&**backend, &c);
    let c = claim_one(&**backend, &q, LEASE).expect("claimed");
    backend
        .complete(&c.lease, Outcome::Dead { error: "x".into() })
        .expect("complete");
    assert_eq!(
        backend.cancel(finished, "late").expect("cancel"),
        Cancellation::Finished(JobState::Done)
    );
    assert_eq!(
        backend.cancel(failed, "late").expect("cancel"),
        Cancellation::Finished(JobState::Dead)
    );
    assert_eq!(
        state_and_reason(&**backend, finished),
        (JobState::Done, None)
    );
    assert_eq!(
        state_and_reason(&**backend, failed),
        (JobState::Dead, Some("x".to_owned()))
    );
}

/// Where the backend pushes cancels ([`BaseQueue::cancel_feed`] gives a
/// feed), a feed opened before a running job is cancelled receives the
/// job's id; a backend without one is not asked.
pub fn cancel_requests_are_pushed(backend: &Arc<dyn BaseQueue>) {
    let Some(mut feed) = backend.cancel_feed().expect("cancel_feed") else {
        return;
    };
    let q = unique_queue("cancel-feed");
    let id = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("a job");
    assert_eq!(
        backend.cancel(id, "pushed").expect("cancel"),
        Cancellation::Requested
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut received = Vec::new();
    while !received.contains(&id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the feed never received job {id}: {received:?}"
        );
        received.extend(feed.next(Duration::from_secs(5)).expect("next"));
    }
    assert_eq!(
        backend
            .complete(&claimed.lease, Outcome::Release)
            .expect("complete"),
        Completion::Applied
    );
    assert_eq!(state_and_reason(&**backend, id).0, JobState::Cancelled);
}
