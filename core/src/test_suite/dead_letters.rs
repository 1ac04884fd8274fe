//! Dead letters: dead jobs are listed, retried and deleted, and the purge
//! never takes them.

use std::sync::Arc;
use std::time::Duration;

use super::{HOUR, LEASE, claim_ids, done, echo_job, state_of, unique_queue};
use crate::{BaseQueue, JobId, JobState, Outcome};

/// Dead jobs are listed newest first, can be retried from scratch or deleted.
pub fn dead_letter_list_retry_delete(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("dead");
    let ids = backend
        .enqueue_many((0..3).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    for (i, claimed) in backend
        .claim(&q, 3, LEASE)
        .expect("claim")
        .into_iter()
        .enumerate()
    {
        let error = format!("reason {i}");
        backend
            .complete(&claimed.lease, Outcome::Dead { error })
            .expect("complete");
        // distinct finish times, so "newest first" is well defined
        std::thread::sleep(Duration::from_millis(2));
    }
    let dead = backend.dead_jobs(&q, 0, 10).expect("dead jobs");
    let listed: Vec<JobId> = dead.iter().map(|j| j.id).collect();
    assert_eq!(listed, vec![ids[2], ids[1], ids[0]]);
    assert_eq!(dead[0].last_error.as_deref(), Some("reason 2"));
    assert!(
        dead.iter()
            .all(|j| j.state == JobState::Dead && j.finished_at.is_some())
    );
    assert_eq!(
        backend
            .dead_jobs(&q, 1, 1)
            .expect("page")
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        vec![ids[1]]
    );

    assert!(backend.retry_dead(ids[0]).expect("retry"));
    assert!(
        !backend.retry_dead(ids[0]).expect("retry"),
        "no longer dead"
    );
    let job = backend.job(ids[0]).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Pending, 0));
    assert_eq!(claim_ids(&**backend, &q, 10), vec![ids[0]]);

    assert!(backend.delete_dead(ids[1]).expect("delete"));
    assert!(
        !backend.delete_dead(ids[1]).expect("delete"),
        "already deleted"
    );
    assert!(
        !backend.delete_dead(ids[0]).expect("delete"),
        "running jobs are not dead"
    );
    assert!(backend.job(ids[1]).expect("job").is_none());
    assert_eq!(backend.stats(&q).expect("stats").dead, 1);
}

/// `purge` deletes `done` jobs older than the retention, never `dead` ones.
pub fn purge_done_only(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("purge");
    let ids = backend
        .enqueue_many((0..2).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    let claimed = backend.claim(&q, 2, LEASE).expect("claim");
    done(&**backend, &claimed[0]);
    backend
        .complete(&claimed[1].lease, Outcome::Dead { error: "x".into() })
        .expect("complete");
    assert_eq!(backend.purge(HOUR).expect("purge"), 0, "too recent");
    assert_eq!(state_of(&**backend, ids[0]), JobState::Done);
    std::thread::sleep(Duration::from_millis(5));
    assert!(backend.purge(Duration::ZERO).expect("purge") >= 1);
    assert!(backend.job(ids[0]).expect("job").is_none(), "purged");
    assert_eq!(
        state_of(&**backend, ids[1]),
        JobState::Dead,
        "dead jobs stay"
    );
}
