//! A command's own retry policy: `backoff = "…"` spaces its failed attempts
//! in place of the consumer's [`RetryPolicy`], and a [`Fail`] it returns
//! makes an error final or asks for a retry after a given delay. Each job
//! runs one attempt by hand on a simple processor whose own policy waits
//! 1,000 s, so any other delay comes from the command.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use outband::{
    BaseQueue, Fail, Job, JobId, JobState, MemoryQueue, ProcessorConfig, RetryPolicy,
    SimpleProcessor, queue_command,
};

const QUEUE: &str = "retry-policy";

/// The consumer's policy: a long, exact delay that no command asks for.
const CONSUMER_DELAY: Duration = Duration::from_secs(1000);

#[queue_command(queue = "retry-policy", retries = 2, backoff = "fixed(45s)")]
fn fixed_backoff() -> Result<(), String> {
    Err("always fails".into())
}

#[queue_command(queue = "retry-policy", retries = 2, backoff = "exponential(10s, 1h)")]
fn exponential_backoff() -> Result<(), String> {
    Err("always fails".into())
}

#[queue_command(queue = "retry-policy", retries = 2, backoff = "none")]
fn no_backoff() -> Result<(), String> {
    Err("always fails".into())
}

#[queue_command(queue = "retry-policy", retries = 2, backoff = "none")]
fn panics_without_backoff() {
    panic!("on purpose");
}

#[queue_command(queue = "retry-policy", retries = 2)]
fn consumer_backoff() -> Result<(), String> {
    Err("always fails".into())
}

#[queue_command(queue = "retry-policy", retries = 5)]
fn refuses(amount: i64) -> Result<(), Fail> {
    Err(Fail::fatal(format!("amount {amount} is not positive")))
}

#[queue_command(queue = "retry-policy", retries = 5, backoff = "none")]
fn rate_limited() -> Result<(), Fail> {
    Err(Fail::retry_after(
        Duration::from_secs(7),
        "429 Too Many Requests",
    ))
}

#[queue_command(queue = "retry-policy", retries = 0)]
fn rate_limited_on_its_last_attempt() -> Result<(), Fail> {
    Err(Fail::retry_after(
        Duration::from_secs(7),
        "429 Too Many Requests",
    ))
}

#[queue_command(queue = "retry-policy", retries = 2)]
fn reads_a_missing_file() -> Result<String, Fail> {
    Ok(std::fs::read_to_string(
        "/nonexistent/outband/retry-policy",
    )?)
}

#[cfg(feature = "runtime")]
#[queue_command(queue = "retry-policy", retries = 5)]
async fn refuses_async(amount: i64) -> Result<(), Fail> {
    tokio::task::yield_now().await;
    Err(Fail::fatal(format!("amount {amount} is not positive")))
}

/// Runs the job's first attempt and returns the job and how long from now
/// it waits for its next one (zero when it is ready now).
fn first_attempt(enqueue: impl FnOnce(&MemoryQueue) -> JobId) -> (Job, Duration) {
    let backend = Arc::new(MemoryQueue::new());
    let id = enqueue(&backend);
    let config = ProcessorConfig {
        retry: RetryPolicy {
            base: CONSUMER_DELAY,
            max: CONSUMER_DELAY,
            jitter: 0.0,
        },
        ..ProcessorConfig::default().queues([QUEUE])
    };
    let processor = SimpleProcessor::new(backend.clone(), config).unwrap();
    assert!(processor.process_next().unwrap(), "the job ran");
    let job = backend.job(id).unwrap().expect("still stored");
    let wait = job
        .run_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    (job, wait)
}

/// Whether `wait` is `expected`, less the little time the test took.
fn about(wait: Duration, expected: Duration) -> bool {
    wait <= expected && wait + Duration::from_secs(5) > expected
}

#[test]
fn a_fixed_backoff_replaces_the_consumers_policy() {
    let (job, wait) = first_attempt(|b| fixed_backoff::enqueue_on(b).unwrap());
    assert_eq!((job.state, job.attempt), (JobState::Pending, 1));
    assert!(about(wait, Duration::from_secs(45)), "waits {wait:?}");
}

#[test]
fn an_exponential_backoff_starts_from_its_base() {
    let (job, wait) = first_attempt(|b| exponential_backoff::enqueue_on(b).unwrap());
    assert_eq!(job.state, JobState::Pending);
    assert!(about(wait, Duration::from_secs(10)), "waits {wait:?}");
}

#[test]
fn no_backoff_retries_at_once_after_an_error_or_a_panic() {
    let (job, wait) = first_attempt(|b| no_backoff::enqueue_on(b).unwrap());
    assert_eq!((job.state, wait), (JobState::Pending, Duration::ZERO));
    let (job, wait) = first_attempt(|b| panics_without_backoff::enqueue_on(b).unwrap());
    assert_eq!((job.state, wait), (JobState::Pending, Duration::ZERO));
    assert_eq!(job.last_error.as_deref(), Some("panicked: on purpose"));
}

#[test]
fn without_a_backoff_the_consumers_policy_applies() {
    let (job, wait) = first_attempt(|b| consumer_backoff::enqueue_on(b).unwrap());
    assert_eq!(job.state, JobState::Pending);
    assert!(about(wait, CONSUMER_DELAY), "waits {wait:?}");
}

#[test]
fn a_fatal_error_is_dead_at_once_with_attempts_left() {
    let (job, _) = first_attempt(|b| refuses::enqueue_on(b, -5).unwrap());
    assert_eq!(
        (job.state, job.attempt, job.max_attempts),
        (JobState::Dead, 1, 6)
    );
    assert_eq!(job.last_error.as_deref(), Some("amount -5 is not positive"));
}

#[cfg(feature = "runtime")]
#[test]
fn a_fatal_error_from_an_async_command_is_dead_at_once() {
    let (job, _) = first_attempt(|b| refuses_async::enqueue_on(b, -5).unwrap());
    assert_eq!((job.state, job.attempt), (JobState::Dead, 1));
    assert_eq!(job.last_error.as_deref(), Some("amount -5 is not positive"));
}

#[test]
fn retry_after_overrides_the_backoff_and_counts_the_attempt() {
    let (job, wait) = first_attempt(|b| rate_limited::enqueue_on(b).unwrap());
    assert_eq!((job.state, job.attempt), (JobState::Pending, 1));
    assert!(about(wait, Duration::from_secs(7)), "waits {wait:?}");
    assert_eq!(job.last_error.as_deref(), Some("429 Too Many Requests"));

    let (job, _) = first_attempt(|b| rate_limited_on_its_last_attempt::enqueue_on(b).unwrap());
    assert_eq!(job.state, JobState::Dead, "no attempt left to retry");
}

#[test]
fn question_mark_into_fail_is_an_ordinary_failure() {
    let (job, wait) = first_attempt(|b| reads_a_missing_file::enqueue_on(b).unwrap());
    assert_eq!(job.state, JobState::Pending);
    assert!(about(wait, CONSUMER_DELAY), "waits {wait:?}");
    let error = job.last_error.unwrap();
    assert!(error.contains("No such file"), "{error}");
}

#[test]
fn eager_calls_see_the_fail_itself() {
    let error = refuses::call(-1).unwrap_err();
    assert!(error.is_fatal());
    assert_eq!(error.to_string(), "amount -1 is not positive");
}
