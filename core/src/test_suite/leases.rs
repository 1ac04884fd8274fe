//! Leases: an expired one is recovered, a heartbeat extends a held one, a
//! release gives the job back uncounted, a lost one changes nothing, and
//! jobs completed against leases keep their times, results and order.

use std::sync::Arc;
use std::time::Duration;

use super::{LEASE, claim_one, done, echo, echo_job, state_of, unique_queue};
use crate::{BaseQueue, Completion, Heartbeat, JobId, JobState, Lease, Outcome, Progress};

/// An expired lease is recovered to `pending` with its attempt counted, or to
/// `dead` when attempts are spent; the old lease is then fenced off.
pub fn lease_expiry_and_recovery(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("recover");
    let live = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    let held = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(held.job.id, live);

    let retried = backend
        .enqueue(echo_job(&q, 1).max_attempts(2))
        .expect("enqueue");
    let last = backend
        .enqueue(echo_job(&q, 2).max_attempts(1))
        .expect("enqueue");
    let first = claim_one(&**backend, &q, Duration::ZERO).expect("claimed");
    let only = claim_one(&**backend, &q, Duration::ZERO).expect("claimed");
    assert_eq!((first.job.id, only.job.id), (retried, last));
    assert_eq!(first.job.attempt, 1);

    let recovered = backend.recover_expired().expect("recover");
    assert!(
        recovered.requeued >= 1 && recovered.dead >= 1,
        "{recovered:?}"
    );
    assert_eq!(
        state_of(&**backend, live),
        JobState::Running,
        "a live lease is not recovered"
    );
    let job = backend.job(retried).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Pending, 1));
    assert!(job.last_error.is_some_and(|e| e.contains("lease")));
    let dead = backend.job(last).expect("job").expect("exists");
    assert_eq!(dead.state, JobState::Dead);
    assert!(dead.last_error.is_some_and(|e| e.contains("lease")));

    let again = claim_one(&**backend, &q, LEASE).expect("recovered job is claimable");
    assert_eq!((again.job.id, again.job.attempt), (retried, 2));
    assert_ne!(
        again.lease.token, first.lease.token,
        "each claim has a new token"
    );
    let late = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    assert_eq!(
        backend.complete(&first.lease, late).expect("complete"),
        Completion::LeaseLost
    );
    assert_eq!(
        backend.heartbeat(&first.lease, LEASE).expect("heartbeat"),
        Heartbeat::LeaseLost
    );
    assert_eq!(
        state_of(&**backend, retried),
        JobState::Running,
        "a lost lease changes nothing"
    );
    done(&**backend, &again);
    assert_eq!(
        backend.recover_expired().expect("recover"),
        crate::Recovered::default()
    );
}

/// An expired lease leaves one reason, the same on every backend, whether
/// the job is requeued or dead: `lease expired on attempt n of m`
/// ([`fate::lease_expired`](crate::backend::fate::lease_expired)).
pub fn expired_lease_reason_text(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("expiry-reason");
    let spent = backend
        .enqueue(echo_job(&q, 0).max_attempts(2))
        .expect("enqueue");
    let first = claim_one(&**backend, &q, Duration::ZERO).expect("claimed");
    assert_eq!(first.job.id, spent);
    backend.recover_expired().expect("recover");
    let job = backend.job(spent).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(
        job.last_error.as_deref(),
        Some("lease expired on attempt 1 of 2"),
        "the reason of a requeued job"
    );

    let last = claim_one(&**backend, &q, Duration::ZERO).expect("claimed again");
    assert_eq!((last.job.id, last.job.attempt), (spent, 2));
    backend.recover_expired().expect("recover");
    let job = backend.job(spent).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Dead, "attempts spent");
    assert_eq!(
        job.last_error.as_deref(),
        Some("lease expired on attempt 2 of 2"),
        "the reason of a dead job"
    );
    assert_eq!(
        job.last_error.as_deref(),
        Some(crate::backend::fate::lease_expired(2, 2).as_str())
    );
}

/// A heartbeat extends a held lease, even one past its deadline that no one
/// recovered; a completed lease can neither beat nor complete again.
pub fn heartbeat_extends_and_fences(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("heartbeat");
    let id = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    let claimed = claim_one(&**backend, &q, Duration::ZERO).expect("claimed");
    let Heartbeat::Extended(deadline) =
        backend.heartbeat(&claimed.lease, LEASE).expect("heartbeat")
    else {
        panic!("a held lease must be extended");
    };
    assert!(deadline > claimed.lease.deadline);
    assert_eq!(backend.recover_expired().expect("recover").requeued, 0);
    assert_eq!(state_of(&**backend, id), JobState::Running);
    done(&**backend, &claimed);
    let again = Outcome::Dead {
        error: "late".into(),
    };
    assert_eq!(
        backend.complete(&claimed.lease, again).expect("complete"),
        Completion::LeaseLost
    );
    assert_eq!(
        backend.heartbeat(&claimed.lease, LEASE).expect("heartbeat"),
        Heartbeat::LeaseLost
    );
    assert_eq!(state_of(&**backend, id), JobState::Done);
}

/// A released job is ready again at once and its attempt is not counted.
pub fn release_does_not_count_attempt(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("release");
    let id = backend
        .enqueue(echo_job(&q, 0).max_attempts(1))
        .expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(
        backend
            .complete(&claimed.lease, Outcome::Release)
            .expect("release"),
        Completion::Applied
    );
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Pending, 0));
    let again = claim_one(&**backend, &q, LEASE).expect("released job is claimable");
    assert_eq!((again.job.id, again.job.attempt), (id, 1));
}

/// Enqueue, start and finish times are recorded in order, with the duration.
pub fn job_timings(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("timings");
    let id = backend.enqueue(echo_job(&q, 1)).expect("enqueue");
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt, job.started_at, job.finished_at),
        (JobState::Pending, 0, None, None)
    );
    let claimed = claim_one(&**backend, &q, LEASE).expect("claimed");
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(7),
    };
    backend.complete(&claimed.lease, outcome).expect("complete");
    let job = backend.job(id).expect("job").expect("exists");
    let (started, finished) = (
        job.started_at.expect("started"),
        job.finished_at.expect("finished"),
    );
    assert!(job.enqueued_at <= started && started <= finished, "{job:?}");
    assert_eq!(job.duration, Some(Duration::from_millis(7)));
    assert!(claimed.lease.deadline >= started + LEASE - Duration::from_secs(1));
    assert_eq!(job.command, echo::NAME);
    assert_eq!(job.queue, q);
}

/// `complete_and_claim` completes the jobs first and then claims, as one
/// step: a job that an outcome makes ready (the next of its ordering key) is
/// claimable in the same call, a stale lease changes nothing and does not stop
/// the claim, and `max = 0` only completes.
pub fn complete_and_claim_hands_over(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("handover");
    let done = || Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    let k1 = backend.enqueue(echo_job(&q, 1).key("k")).expect("enqueue");
    let k2 = backend.enqueue(echo_job(&q, 2).key("k")).expect("enqueue");
    let free = backend.enqueue(echo_job(&q, 3)).expect("enqueue");
    let first = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(first.job.id, k1);

    let (completed, claimed) = backend
        .complete_and_claim(vec![(first.lease.clone(), done())], &q, 5, LEASE)
        .expect("complete_and_claim");
    assert_eq!(completed, vec![Completion::Applied]);
    assert_eq!(state_of(&**backend, k1), JobState::Done);
    let mut ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![k2, free],
        "k1's outcome lets k2 be claimed at once"
    );
    for job in &claimed {
        assert_eq!((job.job.state, job.job.attempt), (JobState::Running, 1));
        assert_eq!(state_of(&**backend, job.job.id), JobState::Running);
    }

    let late = [
        backend.enqueue(echo_job(&q, 4)).expect("enqueue"),
        backend.enqueue(echo_job(&q, 5)).expect("enqueue"),
    ];
    let (completed, claimed) = backend
        .complete_and_claim(vec![(first.lease.clone(), done())], &q, 5, LEASE)
        .expect("complete_and_claim");
    assert_eq!(completed, vec![Completion::LeaseLost], "a stale lease");
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, late, "the claim goes on after a lost lease");

    // several outcomes in one call, a stale lease among them
    let mut outcomes: Vec<(Lease, Outcome)> =
        claimed.iter().map(|c| (c.lease.clone(), done())).collect();
    outcomes[1].1 = Outcome::Done {
        result: Some(b"second".to_vec()),
        duration: Duration::from_millis(3),
    };
    outcomes.insert(1, (first.lease, done()));
    let (completed, claimed) = backend
        .complete_and_claim(outcomes, &q, 0, LEASE)
        .expect("complete_and_claim");
    let expected = vec![
        Completion::Applied,
        Completion::LeaseLost,
        Completion::Applied,
    ];
    assert_eq!((completed, claimed.len()), (expected, 0));
    for id in late {
        assert_eq!(state_of(&**backend, id), JobState::Done);
    }
    let (first_late, second_late) = (
        backend.job(late[0]).expect("job").expect("job exists"),
        backend.job(late[1]).expect("job").expect("job exists"),
    );
    assert_eq!(
        (first_late.result.as_deref(), first_late.duration),
        (None, Some(Duration::from_millis(1)))
    );
    assert_eq!(
        (second_late.result.as_deref(), second_late.duration),
        (Some(&b"second"[..]), Some(Duration::from_millis(3)))
    );

    // an outcome's result and run time are kept when the same call claims
    let with_result = backend.enqueue(echo_job(&q, 6)).expect("enqueue");
    let after = backend.enqueue(echo_job(&q, 7)).expect("enqueue");
    let held = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(held.job.id, with_result);
    let outcome = Outcome::Done {
        result: Some(b"\x00handed over".to_vec()),
        duration: Duration::from_millis(9),
    };
    let (completed, claimed) = backend
        .complete_and_claim(vec![(held.lease, outcome)], &q, 5, LEASE)
        .expect("complete_and_claim");
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!((completed, ids), (vec![Completion::Applied], vec![after]));
    let job = backend.job(with_result).expect("job").expect("job exists");
    assert_eq!(
        (job.state, job.result.as_deref(), job.duration),
        (
            JobState::Done,
            Some(&b"\x00handed over"[..]),
            Some(Duration::from_millis(9))
        )
    );
}

/// Progress is stored under a live lease only, replaced by the next report,
/// cleared when an attempt starts, and kept once the job is done or dead;
/// a note in any script survives as written.
pub fn progress_is_stored_and_fenced(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("progress");
    let id = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    assert_eq!(
        backend.job(id).expect("job").expect("exists").progress,
        None
    );
    let first = claim_one(&**backend, &q, LEASE).expect("claimed");
    let half = Progress::new(0.5, "half way: «données» 🚚");
    assert_eq!(
        backend.progress(&first.lease, &half).expect("progress"),
        Completion::Applied
    );
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(job.progress, Some(half));
    let most = Progress::new(0.75, "");
    assert_eq!(
        backend.progress(&first.lease, &most).expect("progress"),
        Completion::Applied
    );
    assert_eq!(
        backend.job(id).expect("job").expect("exists").progress,
        Some(most.clone()),
        "a report replaces the one before"
    );

    let stale = Lease {
        token: first.lease.token.wrapping_add(1),
        ..first.lease.clone()
    };
    assert_eq!(
        backend
            .progress(&stale, &Progress::new(0.1, "stale"))
            .expect("progress"),
        Completion::LeaseLost,
        "another token's report changes nothing"
    );
    assert_eq!(
        backend.job(id).expect("job").expect("exists").progress,
        Some(most.clone())
    );

    assert_eq!(
        backend
            .complete(&first.lease, Outcome::Release)
            .expect("release"),
        Completion::Applied
    );
    assert_eq!(
        backend
            .progress(&first.lease, &Progress::new(0.2, "late"))
            .expect("progress"),
        Completion::LeaseLost,
        "a released lease reports nothing"
    );
    let second = claim_one(&**backend, &q, LEASE).expect("claimed again");
    assert_eq!(
        backend.job(id).expect("job").expect("exists").progress,
        None,
        "a new attempt starts with no progress"
    );
    let all = Progress::new(1.0, "done");
    assert_eq!(
        backend.progress(&second.lease, &all).expect("progress"),
        Completion::Applied
    );
    done(&**backend, &second);
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.progress, Some(all), "a done job keeps its progress");

    let unknown = Lease {
        job: JobId(u64::MAX - 7),
        token: 1,
        deadline: first.lease.deadline,
    };
    assert_eq!(
        backend
            .progress(&unknown, &Progress::new(0.5, ""))
            .expect("progress of an unknown job"),
        Completion::LeaseLost
    );
}
