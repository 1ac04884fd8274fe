//! Processing: a processor runs the suite's commands and decides retries and
//! dead letters from what they do.

use std::sync::Arc;
use std::time::Duration;

use super::{
    HOUR, LEASE, claim_one, echo, echo_job, fail, panics, processor, state_of, unique_queue,
};
use crate::{BaseQueue, Completion, JobId, JobState, NewJob, Outcome, Processed, codec};

/// A retry waits out its delay on the backend's clock; the processor retries
/// a failing command until its attempts are spent, then it is `dead`.
pub fn retry_backoff_then_dead(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("retry");
    let id = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("claimed");
    let before = backend.now().expect("now");
    let retry = Outcome::Retry {
        delay: HOUR,
        error: "boom".into(),
    };
    assert_eq!(
        backend.complete(&claimed.lease, retry).expect("complete"),
        Completion::Applied
    );
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.last_error.as_deref(), Some("boom"));
    assert!(
        job.run_at >= before + HOUR - Duration::from_secs(1),
        "run_at honours the delay"
    );
    assert!(
        claim_one(&**backend, &q, LEASE).is_none(),
        "not ready before its delay"
    );
    assert!(!backend.has_jobs_waiting(&q).expect("waiting"));

    let q = unique_queue("retry-dead");
    let job = NewJob::new(
        fail::NAME,
        codec::encode(&("no luck".to_owned(),)).expect("encodes"),
    )
    .queue(&q)
    .max_attempts(3);
    let id = backend.enqueue(job).expect("enqueue");
    let processor = processor(backend, &q);
    for attempt in 1..=3 {
        let claimed = processor
            .claim_next_job()
            .expect("claim")
            .expect("a job is ready");
        assert_eq!(claimed.job.attempt, attempt);
        let processed = processor.process(claimed).expect("process");
        match processed {
            Processed::Retried { error, .. } if attempt < 3 => assert_eq!(error, "no luck"),
            Processed::Dead { error } if attempt == 3 => assert_eq!(error, "no luck"),
            other => panic!("attempt {attempt}: unexpected {other:?}"),
        }
    }
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Dead, 3));
    assert_eq!(job.last_error.as_deref(), Some("no luck"));
    assert!(
        !processor.process_next().expect("process"),
        "a dead job is not claimed"
    );
}

/// Arguments that cannot be decoded send the job to `dead` on its first
/// attempt, with the reason.
pub fn undecodable_arguments_dead_at_once(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("garbage");
    let payloads: [(&str, Vec<u8>); 5] = [
        (echo::NAME, vec![0xde, 0xad, 0xbe, 0xef]),
        (echo::NAME, vec![1]),
        (
            echo::NAME,
            codec::encode(&("not a number",)).expect("encodes"),
        ),
        (echo::NAME, codec::encode(&(1u64, 2u64)).expect("encodes")),
        // a String whose length prefix claims u64::MAX bytes
        (
            fail::NAME,
            vec![1, 253, 255, 255, 255, 255, 255, 255, 255, 255],
        ),
    ];
    let ids: Vec<JobId> = payloads
        .into_iter()
        .map(|(command, args)| {
            backend
                .enqueue(NewJob::new(command, args).queue(&q).max_attempts(5))
                .expect("enqueue")
        })
        .collect();
    let good = backend.enqueue(echo_job(&q, 42)).expect("enqueue");
    let processor = processor(backend, &q);
    while processor.process_next().expect("process") {}
    for id in ids {
        let job = backend.job(id).expect("job").expect("exists");
        assert_eq!((job.state, job.attempt), (JobState::Dead, 1), "job {id}");
        let error = job.last_error.unwrap_or_default();
        assert!(error.contains("undecodable arguments"), "job {id}: {error}");
    }
    assert_eq!(
        state_of(&**backend, good),
        JobState::Done,
        "the consumer goes on"
    );
}

/// A job naming an unknown command fails each attempt, listing the known
/// commands, and is `dead` after the last.
pub fn unknown_command_dead_after_attempts(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("unknown");
    let job = NewJob::new(
        "outband::test_suite::no_such_command",
        codec::encode(&()).expect("encodes"),
    )
    .queue(&q)
    .max_attempts(2);
    let id = backend.enqueue(job).expect("enqueue");
    let processor = processor(backend, &q);
    assert!(processor.process_next().expect("process"));
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Pending, 1),
        "an unknown command is retried"
    );
    assert!(processor.process_next().expect("process"));
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Dead, 2));
    let error = job.last_error.unwrap_or_default();
    assert!(
        error.contains("unknown command `outband::test_suite::no_such_command`"),
        "{error}"
    );
    assert!(
        error.contains(echo::NAME),
        "the error lists the known commands: {error}"
    );
}

/// A panicking command is caught, retried, then `dead` with the panic message.
pub fn panicking_command_retried_then_dead(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("panic");
    let args = codec::encode(&("kaboom".to_owned(),)).expect("encodes");
    let id = backend
        .enqueue(NewJob::new(panics::NAME, args).queue(&q).max_attempts(2))
        .expect("enqueue");
    let good = backend.enqueue(echo_job(&q, 1)).expect("enqueue");
    let processor = processor(backend, &q);
    let first = processor.claim_next_job().expect("claim").expect("ready");
    assert!(
        matches!(processor.process(first).expect("process"), Processed::Retried { ref error, .. } if error.contains("kaboom"))
    );
    while processor.process_next().expect("process") {}
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Dead, 2));
    assert_eq!(job.last_error.as_deref(), Some("panicked: kaboom"));
    assert_eq!(
        state_of(&**backend, good),
        JobState::Done,
        "the processor lives on"
    );
}

/// A command's return value is stored with its job.
pub fn results_are_stored(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("results");
    let id = backend.enqueue(echo_job(&q, 4242)).expect("enqueue");
    let unit = backend
        .enqueue(
            NewJob::new(
                fail::NAME,
                codec::encode(&("x".to_owned(),)).expect("encodes"),
            )
            .queue(&q),
        )
        .expect("enqueue");
    let processor = processor(backend, &q);
    assert!(processor.process_next().expect("process"));
    let job = backend.job(id).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Done);
    assert_eq!(
        job.result::<u64>().expect("has a result").expect("decodes"),
        4242
    );
    assert!(processor.process_next().expect("process"));
    assert!(
        backend
            .job(unit)
            .expect("job")
            .expect("exists")
            .result
            .is_none(),
        "failed: no result"
    );
}
