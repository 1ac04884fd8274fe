//! The conformance suite: [`BaseQueue`]'s contract as tests that any backend
//! runs with one macro call.
//!
//! ```
//! // in a backend's tests/conformance.rs, with outband's `test-suite` feature
//! outband::conformance_tests!(outband::MemoryQueue::new());
//! # fn main() {}
//! ```
//!
//! The expression is evaluated once per test and must give a fresh
//! [`BaseQueue`] value (or an `Arc` of one), an `Option` of one (`None` skips
//! the test, for a server that is missing), or any other [`Fixture`]. Each case also uses queue names of
//! its own, so a backend whose values share one store (a Redis server, a
//! database) still keeps cases apart; the cases may run in parallel.
//!
//! Every case is also a public function taking `&Arc<dyn BaseQueue>`, listed in
//! [`CASES`], for harnesses other than `#[test]`.
//!
//! The cases that run jobs use the commands this module registers when the
//! feature is on: `outband::test_suite::echo`, `::fail` and `::panic`, and
//! the async `::echo_async`, `::fail_async`, `::panic_async`,
//! `::sleep_async` (sleeps on tokio's timer) and `::meet_async` (waits for
//! another job to start), registered on a queue of their own,
//! `outband-test-suite-async`, that no job is enqueued to; and
//! `::enqueued_async`, which the awaited enqueue case only stores, on
//! `outband-test-suite-async-enqueued`. The feature turns on `runtime`, so
//! that every backend's suite runs the async ones.
//!
//! The cases live in one file per part of the contract: `enqueue.rs` (batches,
//! counting, cancelling and flushing pending jobs), `order.rs` (claim order,
//! no double claim), `leases.rs` (expiry, recovery, heartbeats, release,
//! fencing, completing jobs), `keys.rs` (ordering keys), `schedule.rs`
//! (jobs that run later), `dead_letters.rs` (dead jobs and the purge),
//! `cancel.rs` (cancelling), `listing.rs` (listing jobs a page at a time),
//! `finish.rs` (waiting for a job's end), `pause.rs` (pausing queues), `unique.rs` (unique jobs), `limits.rs` (concurrency and rate limits),
//! `consumers.rs` (the consumer registry),
//! `processing.rs` (a processor running the commands of `commands.rs`),
//! `async_jobs.rs` (awaited enqueues, and a multi processor running async
//! commands: results, failures, ordering keys, heartbeats, a stop) and
//! `ticks.rs` (periodic ticks). A new case is a public function in its topic's
//! file plus one line in the list inside `__conformance_cases!`, from which
//! both the macro's tests and [`CASES`] are made.

mod async_jobs;
mod cancel;
mod commands;
mod consumers;
mod dead_letters;
mod enqueue;
mod finish;
mod keys;
mod leases;
mod limits;
mod listing;
mod order;
mod pause;
mod processing;
mod schedule;
mod ticks;
mod unique;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{
    BaseQueue, Claimed, Completion, JobId, JobState, NewJob, Outcome, ProcessorConfig, RetryPolicy,
    SimpleProcessor, codec,
};

pub use async_jobs::*;
pub use cancel::*;
pub use commands::{
    echo, echo_async, enqueued_async, fail, fail_async, meet_async, panics, panics_async,
    sleep_async,
};
pub use consumers::*;
pub use dead_letters::*;
pub use enqueue::*;
pub use finish::*;
pub use keys::*;
pub use leases::*;
pub use limits::*;
pub use listing::*;
pub use order::*;
pub use pause::*;
pub use processing::*;
pub use schedule::*;
pub use ticks::*;
pub use unique::*;

/// Generates one `#[test]` per conformance case, each on a fresh backend made
/// by the given expression.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_cases! { tests ($factory) }
    };
}

/// The one list of conformance cases, each as `file::case`, in the order they
/// run. `tests (factory)` makes a `#[test]` of each case (for
/// `conformance_tests!`), `table` makes the slice behind `test_suite::CASES`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (@expand [tests ($factory:expr)] $($topic:ident::$case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let ::std::option::Option::Some((backend, _guard)) =
                    $crate::test_suite::Fixture::open($factory)
                else {
                    return;
                };
                $crate::test_suite::$case(&backend);
            }
        )*
    };
    (@expand [table] $($topic:ident::$case:ident)*) => {
        &[$((::core::stringify!($case), $crate::test_suite::$topic::$case)),*]
    };
    (@expand [$($how:tt)*] $($cases:tt)*) => {
        ::core::compile_error!("`__conformance_cases!` takes `tests (factory)` or `table`")
    };
    ($how:ident $($args:tt)*) => {
        $crate::__conformance_cases! {
            @expand [$how $($args)*]
            order::fifo_order
            order::priority_order
            order::batch_claim_order
            order::no_double_claim
            enqueue::enqueue_many_all_or_nothing
            enqueue::enqueue_many_unlike_jobs
            leases::lease_expiry_and_recovery
            leases::heartbeat_extends_and_fences
            leases::release_does_not_count_attempt
            processing::retry_backoff_then_dead
            keys::ordering_key_exclusion_and_order
            schedule::scheduled_run_at
            enqueue::cancel_flush_len_stats
            enqueue::estimate_stats_bounds
            dead_letters::dead_letter_list_retry_delete
            dead_letters::purge_done_only
            processing::undecodable_arguments_dead_at_once
            processing::unknown_command_dead_after_attempts
            processing::panicking_command_retried_then_dead
            processing::results_are_stored
            leases::job_timings
            ticks::claim_tick_once
            ticks::last_tick_is_the_latest_claimed
            consumers::consumers_register_heartbeat_and_go
            leases::complete_and_claim_hands_over
            leases::expired_lease_reason_text
            leases::progress_is_stored_and_fenced
            enqueue::timeouts_are_stored
            cancel::cancel_pending_jobs
            cancel::cancel_running_jobs
            cancel::cancel_finished_jobs_changes_nothing
            cancel::cancel_requests_are_pushed
            listing::jobs_are_listed_by_state
            listing::job_pages_walk_every_job_once
            listing::sparse_listing_goes_on_below_short_pages
            finish::wait_finished_wakes_when_the_job_ends
            pause::paused_queues_are_not_claimed
            pause::processors_skip_paused_queues
            unique::unique_keys_hold_while_in_scope
            unique::racing_unique_enqueues_store_one_job
            limits::concurrency_limits_cap_running_jobs
            limits::concurrency_limits_hold_under_racing_claims
            limits::limits_keep_priorities_and_ordering_keys
            limits::rate_limits_space_starts
            limits::processors_follow_rate_limits
            async_jobs::awaited_enqueue_stores_the_sync_job
            async_jobs::async_jobs_run_to_done
            async_jobs::async_failures_retried_then_dead
            async_jobs::async_ordering_keys
            async_jobs::heartbeats_keep_async_leases
            async_jobs::stop_releases_pending_async_job
        }
    };
}

/// A conformance case.
pub type Case = fn(&Arc<dyn BaseQueue>);

/// What `conformance_tests!`'s expression may give each test: a backend, or
/// `None` to skip the test (its server is unreachable and not required), or a
/// fixture of your own that keeps something alive while the test runs (a
/// guard that deletes the test's namespace, say).
pub trait Fixture {
    /// The backend to test, and whatever must live until the test ends; `None`
    /// skips the test.
    fn open(self) -> Option<(Arc<dyn BaseQueue>, Box<dyn std::any::Any>)>;
}

impl<Q: BaseQueue + 'static> Fixture for Q {
    fn open(self) -> Option<(Arc<dyn BaseQueue>, Box<dyn std::any::Any>)> {
        Some((Arc::new(self), Box::new(())))
    }
}

impl<F: Fixture> Fixture for Option<F> {
    fn open(self) -> Option<(Arc<dyn BaseQueue>, Box<dyn std::any::Any>)> {
        self.and_then(Fixture::open)
    }
}

/// Every case, by name, in the order `conformance_tests!` runs them.
pub const CASES: &[(&str, Case)] = crate::__conformance_cases!(table);

const LEASE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// A queue name no other case or run uses.
fn unique_queue(case: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "suite-{case}-{}-{}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

fn echo_job(queue: &str, value: u64) -> NewJob {
    NewJob::new(echo::NAME, codec::encode(&(value,)).expect("encodes")).queue(queue)
}

fn claim_one(backend: &dyn BaseQueue, name: &str, lease: Duration) -> Option<Claimed> {
    let mut claimed = backend.claim(name, 1, lease).expect("claim");
    assert!(
        claimed.len() <= 1,
        "claim(max = 1) returned {} jobs",
        claimed.len()
    );
    claimed.pop()
}

fn claim_ids(backend: &dyn BaseQueue, name: &str, max: usize) -> Vec<JobId> {
    backend
        .claim(name, max, LEASE)
        .expect("claim")
        .into_iter()
        .map(|c| c.job.id)
        .collect()
}

fn done(backend: &dyn BaseQueue, claimed: &Claimed) {
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    assert_eq!(
        backend.complete(&claimed.lease, outcome).expect("complete"),
        Completion::Applied
    );
}

/// Asserts that a `wait` on `queue`, `what` the queue is, does not end at
/// once: no busy polling for jobs a claim would not take.
fn assert_wait_holds(backend: &dyn BaseQueue, queue: &str, what: &str) {
    let timeout = Duration::from_millis(400);
    let started = std::time::Instant::now();
    backend.wait(&[queue.to_owned()], timeout).expect("wait");
    assert!(
        started.elapsed() >= timeout / 2,
        "a wait on {what} returned after {:?}",
        started.elapsed()
    );
}

fn state_of(backend: &dyn BaseQueue, id: JobId) -> JobState {
    backend.job(id).expect("job").expect("job exists").state
}

fn processor(backend: &Arc<dyn BaseQueue>, name: &str) -> SimpleProcessor {
    let config = ProcessorConfig::default()
        .queues([name])
        .wait_time(Duration::from_millis(10))
        .retry(RetryPolicy::immediate());
    SimpleProcessor::new(Arc::clone(backend), config).expect("processor")
}
