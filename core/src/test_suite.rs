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
//! The cases that run jobs use three commands this module registers when the
//! feature is on: `outband::test_suite::echo`, `::fail` and `::panic`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::{
    BaseQueue, Claimed, Completion, Heartbeat, JobId, JobState, Lease, NewJob, Outcome, Processed,
    ProcessorConfig, RetryPolicy, SimpleProcessor, When, codec, queue_command,
};

/// Returns its argument; its result is stored.
#[queue_command(name = "outband::test_suite::echo")]
pub fn echo(value: u64) -> u64 {
    value
}

/// Always fails with `message`.
#[queue_command(name = "outband::test_suite::fail")]
pub fn fail(message: String) -> Result<(), String> {
    Err(message)
}

/// Always panics with `message`.
#[queue_command(name = "outband::test_suite::panic")]
pub fn panics(message: String) {
    panic!("{message}")
}

/// Generates one `#[test]` per conformance case, each on a fresh backend made
/// by the given expression.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_tests! {
            ($factory)
            fifo_order priority_order batch_claim_order no_double_claim enqueue_many_all_or_nothing
            enqueue_many_unlike_jobs
            lease_expiry_and_recovery heartbeat_extends_and_fences release_does_not_count_attempt
            retry_backoff_then_dead ordering_key_exclusion_and_order scheduled_run_at
            cancel_flush_len_stats dead_letter_list_retry_delete purge_done_only
            undecodable_arguments_dead_at_once unknown_command_dead_after_attempts
            panicking_command_retried_then_dead results_are_stored job_timings claim_tick_once
            complete_and_claim_hands_over
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (($factory:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let ::std::option::Option::Some((queue, _guard)) =
                    $crate::test_suite::Fixture::open($factory)
                else {
                    return;
                };
                $crate::test_suite::$case(&queue);
            }
        )*

        #[test]
        fn conformance_tests_cover_every_case() {
            let generated = [$(stringify!($case)),*];
            let listed: ::std::vec::Vec<&str> = $crate::test_suite::CASES.iter().map(|(name, _)| *name).collect();
            assert_eq!(generated.as_slice(), listed.as_slice());
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
pub const CASES: &[(&str, Case)] = &[
    ("fifo_order", fifo_order),
    ("priority_order", priority_order),
    ("batch_claim_order", batch_claim_order),
    ("no_double_claim", no_double_claim),
    ("enqueue_many_all_or_nothing", enqueue_many_all_or_nothing),
    ("enqueue_many_unlike_jobs", enqueue_many_unlike_jobs),
    ("lease_expiry_and_recovery", lease_expiry_and_recovery),
    ("heartbeat_extends_and_fences", heartbeat_extends_and_fences),
    (
        "release_does_not_count_attempt",
        release_does_not_count_attempt,
    ),
    ("retry_backoff_then_dead", retry_backoff_then_dead),
    (
        "ordering_key_exclusion_and_order",
        ordering_key_exclusion_and_order,
    ),
    ("scheduled_run_at", scheduled_run_at),
    ("cancel_flush_len_stats", cancel_flush_len_stats),
    (
        "dead_letter_list_retry_delete",
        dead_letter_list_retry_delete,
    ),
    ("purge_done_only", purge_done_only),
    (
        "undecodable_arguments_dead_at_once",
        undecodable_arguments_dead_at_once,
    ),
    (
        "unknown_command_dead_after_attempts",
        unknown_command_dead_after_attempts,
    ),
    (
        "panicking_command_retried_then_dead",
        panicking_command_retried_then_dead,
    ),
    ("results_are_stored", results_are_stored),
    ("job_timings", job_timings),
    ("claim_tick_once", claim_tick_once),
    (
        "complete_and_claim_hands_over",
        complete_and_claim_hands_over,
    ),
];

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

fn claim_one(queue: &dyn BaseQueue, name: &str, lease: Duration) -> Option<Claimed> {
    let mut claimed = queue.claim(name, 1, lease).expect("claim");
    assert!(
        claimed.len() <= 1,
        "claim(max = 1) returned {} jobs",
        claimed.len()
    );
    claimed.pop()
}

fn claim_ids(queue: &dyn BaseQueue, name: &str, max: usize) -> Vec<JobId> {
    queue
        .claim(name, max, LEASE)
        .expect("claim")
        .into_iter()
        .map(|c| c.job.id)
        .collect()
}

fn done(queue: &dyn BaseQueue, claimed: &Claimed) {
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    assert_eq!(
        queue.complete(&claimed.lease, outcome).expect("complete"),
        Completion::Applied
    );
}

fn state_of(queue: &dyn BaseQueue, id: JobId) -> JobState {
    queue.job(id).expect("job").expect("job exists").state
}

fn processor(queue: &Arc<dyn BaseQueue>, name: &str) -> SimpleProcessor {
    let config = ProcessorConfig::default()
        .queues([name])
        .wait_time(Duration::from_millis(10))
        .retry(RetryPolicy::immediate());
    SimpleProcessor::new(Arc::clone(queue), config).expect("processor")
}

/// Jobs of equal priority are claimed in enqueue order, one at a time.
pub fn fifo_order(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("fifo");
    let ids: Vec<JobId> = (0..20)
        .map(|i| queue.enqueue(echo_job(&q, i)).expect("enqueue"))
        .collect();
    let mut claimed = Vec::new();
    while let Some(job) = claim_one(&**queue, &q, LEASE) {
        assert_eq!(job.job.state, JobState::Running);
        claimed.push(job.job.id);
    }
    assert_eq!(claimed, ids, "claims must follow enqueue order");
}

/// Higher priority is claimed first; equal priorities keep enqueue order.
pub fn priority_order(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("priority");
    let low = queue.enqueue(echo_job(&q, 1)).expect("enqueue");
    let high_a = queue
        .enqueue(echo_job(&q, 2).priority(10))
        .expect("enqueue");
    let mid = queue.enqueue(echo_job(&q, 3).priority(5)).expect("enqueue");
    let high_b = queue
        .enqueue(echo_job(&q, 4).priority(10))
        .expect("enqueue");
    let negative = queue
        .enqueue(echo_job(&q, 5).priority(-3))
        .expect("enqueue");
    let order: Vec<JobId> =
        std::iter::from_fn(|| claim_one(&**queue, &q, LEASE).map(|c| c.job.id)).collect();
    assert_eq!(order, vec![high_a, high_b, mid, low, negative]);
}

/// A claim of several jobs takes them in the same order, and no more than asked.
pub fn batch_claim_order(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("batch-claim");
    let ids = queue
        .enqueue_many((0..10).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    assert_eq!(claim_ids(&**queue, &q, 4), ids[..4]);
    assert_eq!(claim_ids(&**queue, &q, 100), ids[4..]);
    assert!(claim_ids(&**queue, &q, 100).is_empty());
    assert!(claim_ids(&**queue, &q, 0).is_empty());
}

/// 8 threads racing over 10,000 jobs: each job is claimed exactly once.
pub fn no_double_claim(queue: &Arc<dyn BaseQueue>) {
    const JOBS: u64 = 10_000;
    let q = unique_queue("race");
    for batch in 0..10 {
        let jobs = (0..JOBS / 10)
            .map(|i| echo_job(&q, batch * 1000 + i))
            .collect();
        queue.enqueue_many(jobs).expect("enqueue");
    }
    let claimed: Vec<Vec<JobId>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (queue, q) = (&queue, &q);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let batch = queue
                            .claim(q, fastrand::usize(1..=8), LEASE)
                            .expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        for claimed in batch {
                            done(&**queue, &claimed);
                            mine.push(claimed.job.id);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let all: Vec<JobId> = claimed.into_iter().flatten().collect();
    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len() as u64, JOBS, "every job claimed once");
    assert_eq!(distinct.len(), all.len(), "no job claimed twice");
    let stats = queue.stats(&q).expect("stats");
    assert_eq!((stats.done, stats.pending, stats.running), (JOBS, 0, 0));
}

/// A batch with one bad job stores nothing; a good batch stores all, in order.
pub fn enqueue_many_all_or_nothing(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("batch");
    let bad_batches = [
        vec![echo_job(&q, 1), echo_job(&q, 2).max_attempts(0)],
        vec![echo_job(&q, 1), NewJob::new("", vec![1]).queue(q.clone())],
        vec![echo_job(&q, 1), echo_job("", 2)],
        vec![
            echo_job(&q, 1),
            NewJob::new(echo::NAME, vec![0; codec::max_payload() + 1]).queue(q.clone()),
        ],
    ];
    for batch in bad_batches {
        assert!(
            queue.enqueue_many(batch).is_err(),
            "a batch with a bad job must fail"
        );
        assert_eq!(
            queue.len(&q).expect("len"),
            0,
            "a failed batch must store nothing"
        );
    }
    let ids = queue
        .enqueue_many((0..50).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    assert_eq!(ids.len(), 50);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        50,
        "ids are unique"
    );
    assert_eq!(queue.len(&q).expect("len"), 50);
    assert_eq!(
        claim_ids(&**queue, &q, 50),
        ids,
        "batch order is enqueue order"
    );
    assert!(
        queue
            .enqueue_many(Vec::new())
            .expect("empty batch")
            .is_empty()
    );
}

/// A batch of unlike jobs (commands, priorities, ordering keys, schedules,
/// attempt limits; one queue, as a cluster needs) stores each job as an
/// `enqueue` of it alone would, and they become ready as if enqueued one at a
/// time in the batch's order.
pub fn enqueue_many_unlike_jobs(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("unlike");
    let alone = unique_queue("unlike-alone");
    let fail_job = |queue: &str| {
        NewJob::new(fail::NAME, codec::encode(&("no",)).expect("encodes"))
            .queue(queue)
            .max_attempts(2)
    };
    let jobs = |queue: &str| {
        vec![
            echo_job(queue, 0),
            echo_job(queue, 1),
            echo_job(queue, 2).priority(5),
            echo_job(queue, 3).key("k"),
            echo_job(queue, 4).key("k"),
            echo_job(queue, 5).when(HOUR),
            fail_job(queue),
            fail_job(queue),
            echo_job(queue, 6).priority(-2),
            echo_job(queue, 7),
        ]
    };
    let before = queue.now().expect("now") - Duration::from_secs(1);
    let ids = queue.enqueue_many(jobs(&q)).expect("enqueue");
    let alone_ids: Vec<JobId> = jobs(&alone)
        .into_iter()
        .map(|job| queue.enqueue(job).expect("enqueue"))
        .collect();
    let after = queue.now().expect("now") + Duration::from_secs(1);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    for ((id, alone_id), given) in ids.iter().zip(&alone_ids).zip(jobs(&q)) {
        let stored = queue.job(*id).expect("job").expect("stored");
        let stored_alone = queue.job(*alone_id).expect("job").expect("stored");
        let fields = |job: &crate::Job| {
            (
                job.command.clone(),
                job.args.clone(),
                job.key.clone(),
                job.priority,
                job.attempt,
                job.max_attempts,
                job.state,
            )
        };
        assert_eq!(stored.queue, q);
        assert_eq!(stored_alone.queue, alone);
        assert_eq!(fields(&stored), fields(&stored_alone), "job {id}");
        assert_eq!(
            (&stored.command, &stored.args, &stored.key, stored.priority),
            (&given.command, &given.args, &given.key, given.priority),
            "job {id} as given"
        );
        assert_eq!(stored.max_attempts, given.max_attempts, "job {id}");
        assert_eq!(stored.state, JobState::Pending, "job {id}");
        for job in [&stored, &stored_alone] {
            let enqueued = job.enqueued_at;
            assert!(before <= enqueued && enqueued <= after, "{job:?}");
            let run_at = given.when.resolve(enqueued);
            let off = job
                .run_at
                .max(run_at)
                .duration_since(job.run_at.min(run_at));
            assert!(off.unwrap_or_default() < Duration::from_secs(2), "{job:?}");
        }
    }
    let expected = |ids: &[JobId]| {
        vec![
            ids[2], ids[0], ids[1], ids[3], ids[6], ids[7], ids[9], ids[8],
        ]
    };
    assert_eq!(queue.len(&q).expect("len"), 10);
    assert_eq!(claim_ids(&**queue, &q, 20), expected(&ids));
    assert_eq!(claim_ids(&**queue, &alone, 20), expected(&alone_ids));
    assert_eq!(
        queue.len(&q).expect("len"),
        2,
        "the second job of key k and the scheduled one stay pending"
    );
}

/// An expired lease is recovered to `pending` with its attempt counted, or to
/// `dead` when attempts are spent; the old lease is then fenced off.
pub fn lease_expiry_and_recovery(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("recover");
    let live = queue.enqueue(echo_job(&q, 0)).expect("enqueue");
    let held = claim_one(&**queue, &q, LEASE).expect("claimed");
    assert_eq!(held.job.id, live);

    let retried = queue
        .enqueue(echo_job(&q, 1).max_attempts(2))
        .expect("enqueue");
    let last = queue
        .enqueue(echo_job(&q, 2).max_attempts(1))
        .expect("enqueue");
    let first = claim_one(&**queue, &q, Duration::ZERO).expect("claimed");
    let only = claim_one(&**queue, &q, Duration::ZERO).expect("claimed");
    assert_eq!((first.job.id, only.job.id), (retried, last));
    assert_eq!(first.job.attempt, 1);

    let recovered = queue.recover_expired().expect("recover");
    assert!(
        recovered.requeued >= 1 && recovered.dead >= 1,
        "{recovered:?}"
    );
    assert_eq!(
        state_of(&**queue, live),
        JobState::Running,
        "a live lease is not recovered"
    );
    let job = queue.job(retried).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Pending, 1));
    assert!(job.last_error.is_some_and(|e| e.contains("lease")));
    let dead = queue.job(last).expect("job").expect("exists");
    assert_eq!(dead.state, JobState::Dead);
    assert!(dead.last_error.is_some_and(|e| e.contains("lease")));

    let again = claim_one(&**queue, &q, LEASE).expect("recovered job is claimable");
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
        queue.complete(&first.lease, late).expect("complete"),
        Completion::LeaseLost
    );
    assert_eq!(
        queue.heartbeat(&first.lease, LEASE).expect("heartbeat"),
        Heartbeat::LeaseLost
    );
    assert_eq!(
        state_of(&**queue, retried),
        JobState::Running,
        "a lost lease changes nothing"
    );
    done(&**queue, &again);
    assert_eq!(
        queue.recover_expired().expect("recover"),
        crate::Recovered::default()
    );
}

/// A heartbeat extends a held lease, even one past its deadline that no one
/// recovered; a completed lease can neither beat nor complete again.
pub fn heartbeat_extends_and_fences(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("heartbeat");
    let id = queue.enqueue(echo_job(&q, 0)).expect("enqueue");
    let claimed = claim_one(&**queue, &q, Duration::ZERO).expect("claimed");
    let Heartbeat::Extended(deadline) = queue.heartbeat(&claimed.lease, LEASE).expect("heartbeat")
    else {
        panic!("a held lease must be extended");
    };
    assert!(deadline > claimed.lease.deadline);
    assert_eq!(queue.recover_expired().expect("recover").requeued, 0);
    assert_eq!(state_of(&**queue, id), JobState::Running);
    done(&**queue, &claimed);
    let again = Outcome::Dead {
        error: "late".into(),
    };
    assert_eq!(
        queue.complete(&claimed.lease, again).expect("complete"),
        Completion::LeaseLost
    );
    assert_eq!(
        queue.heartbeat(&claimed.lease, LEASE).expect("heartbeat"),
        Heartbeat::LeaseLost
    );
    assert_eq!(state_of(&**queue, id), JobState::Done);
}

/// A released job is ready again at once and its attempt is not counted.
pub fn release_does_not_count_attempt(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("release");
    let id = queue
        .enqueue(echo_job(&q, 0).max_attempts(1))
        .expect("enqueue");
    let claimed = claim_one(&**queue, &q, LEASE).expect("claimed");
    assert_eq!(
        queue
            .complete(&claimed.lease, Outcome::Release)
            .expect("release"),
        Completion::Applied
    );
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Pending, 0));
    let again = claim_one(&**queue, &q, LEASE).expect("released job is claimable");
    assert_eq!((again.job.id, again.job.attempt), (id, 1));
}

/// A retry waits out its delay on the backend's clock; the processor retries
/// a failing command until its attempts are spent, then it is `dead`.
pub fn retry_backoff_then_dead(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("retry");
    let id = queue.enqueue(echo_job(&q, 0)).expect("enqueue");
    let claimed = claim_one(&**queue, &q, LEASE).expect("claimed");
    let before = queue.now().expect("now");
    let retry = Outcome::Retry {
        delay: HOUR,
        error: "boom".into(),
    };
    assert_eq!(
        queue.complete(&claimed.lease, retry).expect("complete"),
        Completion::Applied
    );
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.last_error.as_deref(), Some("boom"));
    assert!(
        job.run_at >= before + HOUR - Duration::from_secs(1),
        "run_at honours the delay"
    );
    assert!(
        claim_one(&**queue, &q, LEASE).is_none(),
        "not ready before its delay"
    );
    assert!(!queue.has_jobs_waiting(&q).expect("waiting"));

    let q = unique_queue("retry-dead");
    let job = NewJob::new(
        fail::NAME,
        codec::encode(&("no luck".to_owned(),)).expect("encodes"),
    )
    .queue(&q)
    .max_attempts(3);
    let id = queue.enqueue(job).expect("enqueue");
    let processor = processor(queue, &q);
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
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Dead, 3));
    assert_eq!(job.last_error.as_deref(), Some("no luck"));
    assert!(
        !processor.process_next().expect("process"),
        "a dead job is not claimed"
    );
}

/// Jobs with one ordering key run one at a time, in enqueue order, even
/// across retries; other keys are not held up.
pub fn ordering_key_exclusion_and_order(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("keys");
    let a1 = queue.enqueue(echo_job(&q, 1).key("a")).expect("enqueue");
    let a2 = queue
        .enqueue(echo_job(&q, 2).key("a").priority(10))
        .expect("enqueue");
    let b1 = queue.enqueue(echo_job(&q, 3).key("b")).expect("enqueue");
    let a3 = queue.enqueue(echo_job(&q, 4).key("a")).expect("enqueue");
    let free = queue.enqueue(echo_job(&q, 5)).expect("enqueue");

    let first: Vec<Claimed> = queue.claim(&q, 10, LEASE).expect("claim");
    let ids: Vec<JobId> = first.iter().map(|c| c.job.id).collect();
    assert_eq!(
        ids,
        vec![a1, b1, free],
        "one job per key; priority does not jump the key's line"
    );
    assert!(
        claim_ids(&**queue, &q, 10).is_empty(),
        "a2 waits while a1 runs"
    );

    done(&**queue, &first[0]);
    let a2_claim = claim_one(&**queue, &q, LEASE).expect("a2 after a1");
    assert_eq!(a2_claim.job.id, a2);
    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "again".into(),
    };
    queue.complete(&a2_claim.lease, retry).expect("complete");
    let a2_again = claim_one(&**queue, &q, LEASE).expect("a retried job keeps its place");
    assert_eq!(a2_again.job.id, a2, "a3 must not overtake a retried a2");
    done(&**queue, &a2_again);
    assert_eq!(claim_ids(&**queue, &q, 10), vec![a3]);

    // an earlier scheduled job holds its key; cancelling it lets the next run
    let k1 = queue
        .enqueue(echo_job(&q, 6).key("k").when(HOUR))
        .expect("enqueue");
    let k2 = queue.enqueue(echo_job(&q, 7).key("k")).expect("enqueue");
    assert!(
        claim_ids(&**queue, &q, 10).is_empty(),
        "k2 waits behind scheduled k1"
    );
    assert!(queue.cancel(k1).expect("cancel"));
    assert_eq!(claim_ids(&**queue, &q, 10), vec![k2]);

    // a dead job releases its key
    let d1 = queue.enqueue(echo_job(&q, 8).key("d")).expect("enqueue");
    let d2 = queue.enqueue(echo_job(&q, 9).key("d")).expect("enqueue");
    let claimed = claim_one(&**queue, &q, LEASE).expect("claimed");
    assert_eq!(claimed.job.id, d1);
    queue
        .complete(&claimed.lease, Outcome::Dead { error: "x".into() })
        .expect("complete");
    assert_eq!(claim_ids(&**queue, &q, 10), vec![d2]);
}

/// A job scheduled in the future is pending but not ready until its time.
pub fn scheduled_run_at(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("scheduled");
    let now = queue.now().expect("now");
    let later = queue.enqueue(echo_job(&q, 1).when(HOUR)).expect("enqueue");
    let at_later = queue
        .enqueue(echo_job(&q, 2).when(now + HOUR))
        .expect("enqueue");
    assert_eq!(queue.len(&q).expect("len"), 2, "scheduled jobs are pending");
    assert!(!queue.has_jobs_waiting(&q).expect("waiting"));
    assert!(claim_ids(&**queue, &q, 10).is_empty());
    let job = queue.job(later).expect("job").expect("exists");
    assert!(job.run_at >= now + HOUR - Duration::from_secs(1));
    assert_eq!(job.state, JobState::Pending);

    let past = queue
        .enqueue(echo_job(&q, 3).when(now - HOUR))
        .expect("enqueue");
    let immediate = queue
        .enqueue(echo_job(&q, 4).when(When::Now))
        .expect("enqueue");
    assert!(queue.has_jobs_waiting(&q).expect("waiting"));
    assert_eq!(claim_ids(&**queue, &q, 10), vec![past, immediate]);
    assert_eq!(state_of(&**queue, at_later), JobState::Pending);
}

/// `len` counts pending jobs; `cancel` removes one pending job; `flush`
/// removes every pending one; `stats` counts every state.
pub fn cancel_flush_len_stats(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("counts");
    let ids = queue
        .enqueue_many((0..6).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    assert_eq!(queue.len(&q).expect("len"), 6);
    assert!(!queue.is_empty(&q).expect("is_empty"));
    assert!(queue.cancel(ids[5]).expect("cancel"));
    assert!(!queue.cancel(ids[5]).expect("cancel"), "cancelling twice");
    assert!(
        queue.job(ids[5]).expect("job").is_none(),
        "a cancelled job is gone"
    );
    assert_eq!(queue.len(&q).expect("len"), 5);

    let running = claim_one(&**queue, &q, LEASE).expect("claimed");
    assert!(
        !queue.cancel(running.job.id).expect("cancel"),
        "running jobs cannot be cancelled"
    );
    let finished = claim_one(&**queue, &q, LEASE).expect("claimed");
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(20),
    };
    queue.complete(&finished.lease, outcome).expect("complete");
    let failed = claim_one(&**queue, &q, LEASE).expect("claimed");
    queue
        .complete(&failed.lease, Outcome::Dead { error: "x".into() })
        .expect("complete");

    let stats = queue.stats(&q).expect("stats");
    assert_eq!(
        (stats.pending, stats.running, stats.done, stats.dead),
        (2, 1, 1, 1)
    );
    assert_eq!(stats.p50_run_time, Some(Duration::from_millis(20)));
    assert_eq!(stats.mean_run_time, Some(Duration::from_millis(20)));
    assert!(stats.throughput > 0.0, "one job done in the last minute");
    assert!(queue.queues().expect("queues").contains(&q));

    assert_eq!(queue.flush(&q).expect("flush"), 2);
    assert_eq!(queue.len(&q).expect("len"), 0);
    assert!(queue.is_empty(&q).expect("is_empty"));
    let stats = queue.stats(&q).expect("stats");
    assert_eq!(
        (stats.pending, stats.running, stats.done, stats.dead),
        (0, 1, 1, 1)
    );
    done(&**queue, &running);
    assert_eq!(
        queue.stats(&unique_queue("none")).expect("stats"),
        crate::QueueStats::default()
    );
}

/// Dead jobs are listed newest first, can be retried from scratch or deleted.
pub fn dead_letter_list_retry_delete(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("dead");
    let ids = queue
        .enqueue_many((0..3).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    for (i, claimed) in queue
        .claim(&q, 3, LEASE)
        .expect("claim")
        .into_iter()
        .enumerate()
    {
        let error = format!("reason {i}");
        queue
            .complete(&claimed.lease, Outcome::Dead { error })
            .expect("complete");
        // distinct finish times, so "newest first" is well defined
        std::thread::sleep(Duration::from_millis(2));
    }
    let dead = queue.dead_jobs(&q, 0, 10).expect("dead jobs");
    let listed: Vec<JobId> = dead.iter().map(|j| j.id).collect();
    assert_eq!(listed, vec![ids[2], ids[1], ids[0]]);
    assert_eq!(dead[0].last_error.as_deref(), Some("reason 2"));
    assert!(
        dead.iter()
            .all(|j| j.state == JobState::Dead && j.finished_at.is_some())
    );
    assert_eq!(
        queue
            .dead_jobs(&q, 1, 1)
            .expect("page")
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        vec![ids[1]]
    );

    assert!(queue.retry_dead(ids[0]).expect("retry"));
    assert!(!queue.retry_dead(ids[0]).expect("retry"), "no longer dead");
    let job = queue.job(ids[0]).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Pending, 0));
    assert_eq!(claim_ids(&**queue, &q, 10), vec![ids[0]]);

    assert!(queue.delete_dead(ids[1]).expect("delete"));
    assert!(
        !queue.delete_dead(ids[1]).expect("delete"),
        "already deleted"
    );
    assert!(
        !queue.delete_dead(ids[0]).expect("delete"),
        "running jobs are not dead"
    );
    assert!(queue.job(ids[1]).expect("job").is_none());
    assert_eq!(queue.stats(&q).expect("stats").dead, 1);
}

/// `purge` deletes `done` jobs older than the retention, never `dead` ones.
pub fn purge_done_only(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("purge");
    let ids = queue
        .enqueue_many((0..2).map(|i| echo_job(&q, i)).collect())
        .expect("enqueue");
    let claimed = queue.claim(&q, 2, LEASE).expect("claim");
    done(&**queue, &claimed[0]);
    queue
        .complete(&claimed[1].lease, Outcome::Dead { error: "x".into() })
        .expect("complete");
    assert_eq!(queue.purge(HOUR).expect("purge"), 0, "too recent");
    assert_eq!(state_of(&**queue, ids[0]), JobState::Done);
    std::thread::sleep(Duration::from_millis(5));
    assert!(queue.purge(Duration::ZERO).expect("purge") >= 1);
    assert!(queue.job(ids[0]).expect("job").is_none(), "purged");
    assert_eq!(state_of(&**queue, ids[1]), JobState::Dead, "dead jobs stay");
}

/// Arguments that cannot be decoded send the job to `dead` on its first
/// attempt, with the reason.
pub fn undecodable_arguments_dead_at_once(queue: &Arc<dyn BaseQueue>) {
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
            queue
                .enqueue(NewJob::new(command, args).queue(&q).max_attempts(5))
                .expect("enqueue")
        })
        .collect();
    let good = queue.enqueue(echo_job(&q, 42)).expect("enqueue");
    let processor = processor(queue, &q);
    while processor.process_next().expect("process") {}
    for id in ids {
        let job = queue.job(id).expect("job").expect("exists");
        assert_eq!((job.state, job.attempt), (JobState::Dead, 1), "job {id}");
        let error = job.last_error.unwrap_or_default();
        assert!(error.contains("undecodable arguments"), "job {id}: {error}");
    }
    assert_eq!(
        state_of(&**queue, good),
        JobState::Done,
        "the consumer goes on"
    );
}

/// A job naming an unknown command fails each attempt, listing the known
/// commands, and is `dead` after the last.
pub fn unknown_command_dead_after_attempts(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("unknown");
    let job = NewJob::new(
        "outband::test_suite::no_such_command",
        codec::encode(&()).expect("encodes"),
    )
    .queue(&q)
    .max_attempts(2);
    let id = queue.enqueue(job).expect("enqueue");
    let processor = processor(queue, &q);
    assert!(processor.process_next().expect("process"));
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Pending, 1),
        "an unknown command is retried"
    );
    assert!(processor.process_next().expect("process"));
    let job = queue.job(id).expect("job").expect("exists");
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
pub fn panicking_command_retried_then_dead(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("panic");
    let args = codec::encode(&("kaboom".to_owned(),)).expect("encodes");
    let id = queue
        .enqueue(NewJob::new(panics::NAME, args).queue(&q).max_attempts(2))
        .expect("enqueue");
    let good = queue.enqueue(echo_job(&q, 1)).expect("enqueue");
    let processor = processor(queue, &q);
    let first = processor.claim_next_job().expect("claim").expect("ready");
    assert!(
        matches!(processor.process(first).expect("process"), Processed::Retried { ref error, .. } if error.contains("kaboom"))
    );
    while processor.process_next().expect("process") {}
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!((job.state, job.attempt), (JobState::Dead, 2));
    assert_eq!(job.last_error.as_deref(), Some("panicked: kaboom"));
    assert_eq!(
        state_of(&**queue, good),
        JobState::Done,
        "the processor lives on"
    );
}

/// A command's return value is stored with its job.
pub fn results_are_stored(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("results");
    let id = queue.enqueue(echo_job(&q, 4242)).expect("enqueue");
    let unit = queue
        .enqueue(
            NewJob::new(
                fail::NAME,
                codec::encode(&("x".to_owned(),)).expect("encodes"),
            )
            .queue(&q),
        )
        .expect("enqueue");
    let processor = processor(queue, &q);
    assert!(processor.process_next().expect("process"));
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!(job.state, JobState::Done);
    assert_eq!(
        job.result::<u64>().expect("has a result").expect("decodes"),
        4242
    );
    assert!(processor.process_next().expect("process"));
    assert!(
        queue
            .job(unit)
            .expect("job")
            .expect("exists")
            .result
            .is_none(),
        "failed: no result"
    );
}

/// Enqueue, start and finish times are recorded in order, with the duration.
pub fn job_timings(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("timings");
    let id = queue.enqueue(echo_job(&q, 1)).expect("enqueue");
    let job = queue.job(id).expect("job").expect("exists");
    assert_eq!(
        (job.state, job.attempt, job.started_at, job.finished_at),
        (JobState::Pending, 0, None, None)
    );
    let claimed = claim_one(&**queue, &q, LEASE).expect("claimed");
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(7),
    };
    queue.complete(&claimed.lease, outcome).expect("complete");
    let job = queue.job(id).expect("job").expect("exists");
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

/// One tick of a periodic command is claimed by exactly one caller.
pub fn claim_tick_once(queue: &Arc<dyn BaseQueue>) {
    let name = unique_queue("tick");
    let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let winners: usize = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| usize::from(queue.claim_tick(&name, tick).expect("tick"))))
            .collect();
        racers.into_iter().map(|r| r.join().expect("racer")).sum()
    });
    assert_eq!(winners, 1);
    let next = tick + Duration::from_secs(60);
    assert!(
        queue.claim_tick(&name, next).expect("tick"),
        "the next tick is new"
    );
    assert!(!queue.claim_tick(&name, next).expect("tick"));
}

/// `complete_and_claim` records the outcomes first and then claims, as one
/// step: a job that an outcome makes ready (the next of its ordering key) is
/// claimable in the same call, a stale lease changes nothing and does not stop
/// the claim, and `max = 0` only records.
pub fn complete_and_claim_hands_over(queue: &Arc<dyn BaseQueue>) {
    let q = unique_queue("handover");
    let done = || Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    let k1 = queue.enqueue(echo_job(&q, 1).key("k")).expect("enqueue");
    let k2 = queue.enqueue(echo_job(&q, 2).key("k")).expect("enqueue");
    let free = queue.enqueue(echo_job(&q, 3)).expect("enqueue");
    let first = claim_one(&**queue, &q, LEASE).expect("claimed");
    assert_eq!(first.job.id, k1);

    let (completed, claimed) = queue
        .complete_and_claim(vec![(first.lease.clone(), done())], &q, 5, LEASE)
        .expect("complete_and_claim");
    assert_eq!(completed, vec![Completion::Applied]);
    assert_eq!(state_of(&**queue, k1), JobState::Done);
    let mut ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![k2, free],
        "k1's outcome lets k2 be claimed at once"
    );
    for job in &claimed {
        assert_eq!((job.job.state, job.job.attempt), (JobState::Running, 1));
        assert_eq!(state_of(&**queue, job.job.id), JobState::Running);
    }

    let late = [
        queue.enqueue(echo_job(&q, 4)).expect("enqueue"),
        queue.enqueue(echo_job(&q, 5)).expect("enqueue"),
    ];
    let (completed, claimed) = queue
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
    let (completed, claimed) = queue
        .complete_and_claim(outcomes, &q, 0, LEASE)
        .expect("complete_and_claim");
    let expected = vec![
        Completion::Applied,
        Completion::LeaseLost,
        Completion::Applied,
    ];
    assert_eq!((completed, claimed.len()), (expected, 0));
    for id in late {
        assert_eq!(state_of(&**queue, id), JobState::Done);
    }
    let (first_late, second_late) = (
        queue.job(late[0]).expect("job").expect("job exists"),
        queue.job(late[1]).expect("job").expect("job exists"),
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
    let with_result = queue.enqueue(echo_job(&q, 6)).expect("enqueue");
    let after = queue.enqueue(echo_job(&q, 7)).expect("enqueue");
    let held = claim_one(&**queue, &q, LEASE).expect("claimed");
    assert_eq!(held.job.id, with_result);
    let outcome = Outcome::Done {
        result: Some(b"\x00handed over".to_vec()),
        duration: Duration::from_millis(9),
    };
    let (completed, claimed) = queue
        .complete_and_claim(vec![(held.lease, outcome)], &q, 5, LEASE)
        .expect("complete_and_claim");
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!((completed, ids), (vec![Completion::Applied], vec![after]));
    let job = queue.job(with_result).expect("job").expect("job exists");
    assert_eq!(
        (job.state, job.result.as_deref(), job.duration),
        (
            JobState::Done,
            Some(&b"\x00handed over"[..]),
            Some(Duration::from_millis(9))
        )
    );
}
