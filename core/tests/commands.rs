//! `#[queue_command]` end to end on `MemoryQueue`: calling a decorated function
//! enqueues it, and a processor runs it with the same arguments.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use outband::{
    BaseQueue, JobState, MemoryQueue, NewJob, Processed, ProcessorConfig, RetryPolicy,
    SimpleProcessor, When, queue_command,
};

static SEEN: Mutex<Vec<(u64, String, Vec<i32>)>> = Mutex::new(Vec::new());

/// Records its arguments.
#[queue_command(queue = "commands-test", retries = 2, priority = 3, key = user_id)]
fn record(user_id: u64, template: String, extra: Vec<i32>) -> Result<(), String> {
    SEEN.lock().unwrap().push((user_id, template, extra));
    Ok(())
}

/// Always panics.
#[queue_command(queue = "commands-panic", retries = 2)]
fn explode(reason: String) {
    panic!("exploded: {reason}");
}

/// Returns a value.
#[queue_command(queue = "commands-result")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn processor(backend: &Arc<MemoryQueue>, name: &str) -> SimpleProcessor {
    let config = ProcessorConfig::default()
        .queues([name])
        .retry(RetryPolicy::immediate());
    SimpleProcessor::new(backend.clone(), config).unwrap()
}

#[test]
fn calling_a_decorated_function_enqueues_and_a_processor_runs_it() {
    let backend = Arc::new(MemoryQueue::new());
    outband::set_default_backend(backend.clone()).unwrap();
    assert!(matches!(
        outband::set_default_backend(backend.clone()),
        Err(outband::Error::DefaultBackendAlreadySet)
    ));

    let id = record(7, "welcome".into(), vec![1, -2, 3]).unwrap().id();
    assert!(
        SEEN.lock().unwrap().is_empty(),
        "the call must only enqueue"
    );
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.command, record::NAME);
    assert_eq!(record::NAME, "commands::record");
    assert_eq!(job.queue, "commands-test");
    assert_eq!(job.key.as_deref(), Some("7"));
    assert_eq!((job.priority, job.max_attempts), (3, 3));

    let scheduled = record::schedule(Duration::from_secs(3600), 8, "later".into(), vec![])
        .unwrap()
        .id();
    assert_eq!(
        backend.job(scheduled).unwrap().unwrap().state,
        JobState::Pending
    );

    assert!(processor(&backend, "commands-test").process_next().unwrap());
    assert_eq!(
        *SEEN.lock().unwrap(),
        vec![(7, "welcome".to_owned(), vec![1, -2, 3])]
    );
    assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Done);
    assert!(
        !processor(&backend, "commands-test").process_next().unwrap(),
        "scheduled job waits"
    );
}

#[test]
fn call_runs_inline_and_enqueue_on_names_the_queue() {
    let backend = MemoryQueue::new();
    assert_eq!(add::call(2, 3), 5);
    let id = add::enqueue_on(&backend, 20, 22).unwrap();
    let arc: Arc<dyn BaseQueue> = Arc::new(MemoryQueue::new());
    add::enqueue_on(&arc, 1, 1).unwrap();
    let backend = Arc::new(backend);
    assert!(
        processor(&backend, "commands-result")
            .process_next()
            .unwrap()
    );
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!(job.result::<i64>().unwrap().unwrap(), 42);
}

#[test]
fn a_panicking_command_is_retried_then_dead_with_its_message() {
    let backend = Arc::new(MemoryQueue::new());
    let id = explode::enqueue_on(&backend, "on purpose".into()).unwrap();
    let processor = processor(&backend, "commands-panic");
    let first = processor.claim_next_job().unwrap().unwrap();
    match processor.process(first).unwrap() {
        Processed::Retried { error, .. } => assert_eq!(error, "panicked: exploded: on purpose"),
        other => panic!("expected a retry, got {other:?}"),
    }
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Pending, 1));
    assert!(processor.process_next().unwrap());
    assert!(processor.process_next().unwrap());
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Dead, 3));
    assert_eq!(
        job.last_error.as_deref(),
        Some("panicked: exploded: on purpose")
    );
}

#[test]
fn a_late_outcome_after_a_lost_lease_changes_nothing() {
    let backend = Arc::new(MemoryQueue::new());
    let id = add::enqueue_on(&backend, 1, 2).unwrap();
    let claimed = backend
        .claim("commands-result", 1, Duration::ZERO)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(backend.recover_expired().unwrap().requeued, 1);
    let processor = processor(&backend, "commands-result");
    assert_eq!(processor.process(claimed).unwrap(), Processed::LeaseLost);
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!((job.state, job.result), (JobState::Pending, None));
}

#[test]
fn oversized_arguments_are_refused_at_enqueue() {
    let backend = MemoryQueue::new();
    let huge = "x".repeat(outband::codec::max_payload() + 1);
    let err = record::enqueue_on(&backend, 1, huge, vec![]).unwrap_err();
    assert!(
        matches!(
            err,
            outband::Error::Codec(outband::codec::CodecError::TooLarge { .. })
        ),
        "{err}"
    );
    assert_eq!(backend.len("commands-test").unwrap(), 0);
    let err = backend
        .enqueue(NewJob::new("x", vec![1]).when(When::Now).max_attempts(0))
        .unwrap_err();
    assert!(matches!(err, outband::Error::InvalidJob(_)), "{err}");
}
