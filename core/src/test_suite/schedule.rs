//! Scheduled jobs: pending at once, ready only at their time.

use std::sync::Arc;
use std::time::Duration;

use super::{HOUR, claim_ids, echo_job, state_of, unique_queue};
use crate::{BaseQueue, JobState, When};

/// A job scheduled in the future is pending but not ready until its time.
pub fn scheduled_run_at(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("scheduled");
    let now = backend.now().expect("now");
    let later = backend
        .enqueue(echo_job(&q, 1).when(HOUR))
        .expect("enqueue");
    let at_later = backend
        .enqueue(echo_job(&q, 2).when(now + HOUR))
        .expect("enqueue");
    assert_eq!(
        backend.len(&q).expect("len"),
        2,
        "scheduled jobs are pending"
    );
    assert!(!backend.has_jobs_waiting(&q).expect("waiting"));
    assert!(claim_ids(&**backend, &q, 10).is_empty());
    let job = backend.job(later).expect("job").expect("exists");
    assert!(job.run_at >= now + HOUR - Duration::from_secs(1));
    assert_eq!(job.state, JobState::Pending);

    let past = backend
        .enqueue(echo_job(&q, 3).when(now - HOUR))
        .expect("enqueue");
    let immediate = backend
        .enqueue(echo_job(&q, 4).when(When::Now))
        .expect("enqueue");
    assert!(backend.has_jobs_waiting(&q).expect("waiting"));
    assert_eq!(claim_ids(&**backend, &q, 10), vec![past, immediate]);
    assert_eq!(state_of(&**backend, at_later), JobState::Pending);
}
