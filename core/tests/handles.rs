//! `f::handle(id)`: the value a job's command returned, waited for, or a
//! typed reason why there is none: dead, cancelled, not finished in time,
//! gone, of another command, or not of the handle's type.

use std::sync::Arc;
use std::time::Duration;

use outband::{
    BaseQueue, JobError, JobId, MemoryQueue, MultiProcessor, NewJob, ProcessorConfig, RetryPolicy,
    codec, queue_command,
};

#[queue_command(queue = "handles")]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[queue_command(queue = "handles", retries = 0)]
fn refuse(why: String) -> Result<u32, String> {
    Err(why)
}

#[queue_command(queue = "handles")]
fn nothing() {}

#[queue_command(queue = "handles")]
fn greet(name: String) -> Result<String, String> {
    Ok(format!("hello, {name}"))
}

const WAIT: Duration = Duration::from_secs(30);

fn running() -> (Arc<MemoryQueue>, outband::Processor) {
    let backend = Arc::new(MemoryQueue::new());
    let config = ProcessorConfig::default()
        .queues(["handles"])
        .wait_time(Duration::from_millis(10))
        .retry(RetryPolicy::immediate());
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    (backend, processor.into())
}

#[test]
fn a_handle_waits_for_the_value_of_the_job() {
    let (backend, processor) = running();
    let id = add::enqueue_on(&*backend, 2, 3).unwrap();
    let handle = add::handle(id).on(&backend);
    assert_eq!(handle.id(), id);
    assert_eq!(handle.wait(WAIT).unwrap(), 5);
    let greeted = greet::enqueue_on(&*backend, "ada".into()).unwrap();
    assert_eq!(
        greet::handle(greeted).on(&backend).wait(WAIT).unwrap(),
        "hello, ada"
    );
    let unit = nothing::enqueue_on(&*backend).unwrap();
    nothing::handle(unit).on(&backend).wait(WAIT).unwrap();
    processor.stop();
}

#[test]
fn a_dead_job_gives_its_reason() {
    let (backend, processor) = running();
    let id = refuse::enqueue_on(&*backend, "no stock".into()).unwrap();
    match refuse::handle(id).on(&backend).wait(WAIT) {
        Err(JobError::Dead { id: dead, reason }) => {
            assert_eq!((dead, reason.as_str()), (id, "no stock"));
        }
        other => panic!("expected dead, got {other:?}"),
    }
    processor.stop();
}

#[test]
fn a_wait_ends_at_its_timeout_and_a_cancelled_job_says_so() {
    let backend = Arc::new(MemoryQueue::new());
    let id = add::enqueue_on(&*backend, 1, 1).unwrap();
    let handle = add::handle(id).on(&backend);
    match handle.wait(Duration::from_millis(30)) {
        Err(JobError::TimedOut {
            id: waited,
            waited: how_long,
        }) => {
            assert_eq!(waited, id);
            assert!(how_long >= Duration::from_millis(30), "{how_long:?}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    backend.cancel(id, "changed my mind").unwrap();
    match handle.wait(WAIT) {
        Err(JobError::Cancelled { reason, .. }) => assert_eq!(reason, "changed my mind"),
        other => panic!("expected cancelled, got {other:?}"),
    }
}

#[test]
fn a_job_that_is_not_there_or_of_another_command_is_an_error_naming_both() {
    let backend = Arc::new(MemoryQueue::new());
    let gone = add::handle(JobId(u64::MAX)).on(&backend).wait(WAIT);
    assert!(matches!(gone, Err(JobError::Gone { .. })), "{gone:?}");

    let greeting = greet::enqueue_on(&*backend, "ada".into()).unwrap();
    let error = add::handle(greeting).on(&backend).wait(WAIT).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(greet::NAME) && text.contains(add::NAME) && text.contains("u32"),
        "{text}"
    );
}

#[test]
fn a_value_stored_under_another_type_is_a_decode_error_naming_the_type() {
    let backend = Arc::new(MemoryQueue::new());
    // a job of `add` whose stored result is a string: as if `add` had
    // returned one in an older version
    let id = backend
        .enqueue(NewJob::new(add::NAME, codec::encode(&(1u32, 2u32)).unwrap()).queue("handles"))
        .unwrap();
    let claimed = backend
        .claim("handles", 1, Duration::from_secs(60))
        .unwrap()
        .pop()
        .unwrap();
    let stored = codec::encode(&"three".to_owned()).unwrap();
    let done = outband::Outcome::Done {
        result: Some(stored),
        duration: Duration::from_millis(1),
    };
    backend.complete(&claimed.lease, done).unwrap();
    match add::handle(id).on(&backend).wait(WAIT) {
        Err(JobError::Decode { expected_type, .. }) => assert_eq!(expected_type, "u32"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn eager_mode_hands_the_value_back_at_once() {
    outband::set_eager(true);
    let sum = add(20, 22).unwrap();
    assert_eq!(
        sum.wait(Duration::ZERO).unwrap(),
        42,
        "the call's own handle"
    );
    assert_eq!(add::handle(sum.id()).wait(Duration::ZERO).unwrap(), 42);
    let other = greet::handle(sum.id()).wait(Duration::ZERO);
    assert!(
        matches!(other, Err(JobError::OtherCommand { .. })),
        "{other:?}"
    );
}

#[cfg(feature = "runtime")]
#[tokio::test]
async fn a_handle_is_awaited_without_blocking_the_runtime() {
    let (backend, processor) = running();
    let sum = add::enqueue(40, 2).on(&backend).await.unwrap();
    // the awaited enqueue's handle reads the backend the job went to
    assert_eq!(sum.result(WAIT).await.unwrap(), 42);
    let again = add::handle(sum.id()).on(&backend);
    assert_eq!(again.result(WAIT).await.unwrap(), 42);
    processor.stop();
}

#[cfg(feature = "runtime")]
#[tokio::test]
async fn an_enqueue_returns_its_jobs_handle_which_can_cancel_it() {
    let backend = Arc::new(MemoryQueue::new());
    let job = add::enqueue(1, 2).on(&backend).await.unwrap();
    let id: JobId = job.clone().into();
    assert!(job == id, "a handle compares with its id");
    assert_eq!(job.to_string(), id.to_string());
    assert_eq!(backend.job(id).unwrap().expect("stored").command, add::NAME);
    assert_eq!(
        job.cancel("not wanted").unwrap(),
        outband::Cancellation::Cancelled,
        "on the backend the job went to"
    );
    match job.result(WAIT).await {
        Err(JobError::Cancelled { reason, .. }) => assert_eq!(reason, "not wanted"),
        other => panic!("expected a cancelled job, got {other:?}"),
    }
    assert_eq!(
        job.cancel("again").unwrap(),
        outband::Cancellation::Finished(outband::JobState::Cancelled)
    );
}
