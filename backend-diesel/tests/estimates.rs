//! `estimate_stats` on every database that is enabled: each state counted
//! exactly up to the bound; above it, on PostgreSQL and MySQL, the
//! planner's estimate, listed in `estimated`, never at or below the bound
//! and near the truth once the table's statistics are current; SQLite
//! exact at any size.

mod common;

use std::time::Duration;

use outband::{BaseQueue, JobState, NewJob, Outcome, QueueStats};
use outband_diesel::DatabaseQueue;

const LEASE: Duration = Duration::from_secs(60);
const PENDING: u64 = 400;
const DONE: u64 = 200;
const BOUND: u64 = 50;

fn job(queue: &str) -> NewJob {
    NewJob::new(
        "app::job",
        outband::codec::encode(&(1u64,)).expect("encodes"),
    )
    .queue(queue)
}

/// `PENDING` pending and `DONE` done jobs in `big`, and one of each state
/// but cancelled in `small`, a name that would break a statement written
/// out with it.
fn fill(backend: &dyn BaseQueue, big: &str, small: &str) {
    let total = usize::try_from(PENDING + DONE).expect("fits");
    backend
        .enqueue_many((0..total).map(|_| job(big)).collect())
        .expect("enqueue");
    let claimed = backend
        .claim(big, usize::try_from(DONE).expect("fits"), LEASE)
        .expect("claim");
    let done = claimed
        .into_iter()
        .map(|claim| {
            let outcome = Outcome::Done {
                result: None,
                duration: Duration::from_millis(claim.job.id.0 % 40),
            };
            (claim.lease, outcome)
        })
        .collect();
    backend.complete_many(done).expect("complete");

    backend
        .enqueue_many((0..4).map(|_| job(small)).collect())
        .expect("enqueue");
    let claimed = backend.claim(small, 3, LEASE).expect("claim");
    let mut leases = claimed.into_iter().map(|claim| claim.lease);
    let done = Outcome::Done {
        result: None,
        duration: Duration::from_millis(7),
    };
    backend
        .complete(&leases.next().expect("claimed"), done)
        .expect("complete");
    let dead = Outcome::Dead {
        error: "failed".to_owned(),
    };
    backend
        .complete(&leases.next().expect("claimed"), dead)
        .expect("complete");
}

fn counts(stats: &QueueStats) -> [u64; 5] {
    JobState::ALL.map(|state| stats.count(state))
}

/// Checks the estimates of `backend`, whose tables `analyze` brings the
/// planner's statistics up to date for; `estimates` says whether the
/// database gives any.
fn estimate_stats(backend: &DatabaseQueue, analyze: impl Fn(), estimates: bool) {
    let (big, small) = ("big", "small'; DROP TABLE x; --");
    fill(backend, big, small);
    analyze();

    let exact = backend.stats(big).expect("stats");
    assert_eq!(counts(&exact), [PENDING, 0, DONE, 0, 0]);
    assert!(exact.estimated.is_empty(), "stats counts exactly");

    // at or under the bound: exact, whatever the database
    let roomy = backend.estimate_stats(big, 1_000).expect("estimate_stats");
    assert_eq!(counts(&roomy), counts(&exact));
    assert!(roomy.estimated.is_empty());
    assert_eq!(
        roomy.p50_run_time, exact.p50_run_time,
        "every done job sampled"
    );
    assert_eq!(roomy.mean_run_time, exact.mean_run_time);

    let small_exact = backend.stats(small).expect("stats");
    assert_eq!(counts(&small_exact), [1, 1, 1, 1, 0]);
    let small_estimate = backend
        .estimate_stats(small, BOUND)
        .expect("estimate_stats");
    assert_eq!(counts(&small_estimate), counts(&small_exact));
    assert!(small_estimate.estimated.is_empty());
    assert_eq!(small_estimate.p50_run_time, Some(Duration::from_millis(7)));

    let estimate = backend.estimate_stats(big, BOUND).expect("estimate_stats");
    if !estimates {
        assert_eq!(counts(&estimate), counts(&exact), "counted exactly");
        assert!(estimate.estimated.is_empty());
        return;
    }
    assert_eq!(estimate.estimated, [JobState::Pending, JobState::Done]);
    for (state, truth) in [(JobState::Pending, PENDING), (JobState::Done, DONE)] {
        let n = estimate.count(state);
        assert!(
            n > BOUND && n >= truth / 3 && n <= truth * 3,
            "{state:?}: an estimate of {n} for {truth}"
        );
    }
    assert_eq!(
        [estimate.running, estimate.dead, estimate.cancelled],
        [0, 0, 0],
        "the states under the bound are exact"
    );
    // the run times of the last `BOUND` done jobs, each of 0 to 39 ms
    let p99 = estimate.p99_run_time.expect("run times");
    assert!(p99 < Duration::from_millis(40), "{p99:?}");
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_counts_exactly_at_any_size() {
    estimate_stats(&common::sqlite_file_queue(), || {}, false);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_estimates_above_the_bound() {
    use diesel::{Connection, PgConnection, connection::SimpleConnection};

    let prefix = common::unique_prefix();
    let Some(backend) = common::server_queue_with_prefix(&common::pg_url(), &prefix) else {
        return;
    };
    let analyze = || {
        let mut conn = PgConnection::establish(&common::pg_url()).expect("connects");
        conn.batch_execute(&format!("ANALYZE {prefix}jobs; ANALYZE {prefix}done"))
            .expect("analyze");
    };
    estimate_stats(&backend, analyze, true);
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_estimates_above_the_bound() {
    use diesel::{Connection, MysqlConnection, connection::SimpleConnection};

    let prefix = common::unique_prefix();
    let Some(backend) = common::server_queue_with_prefix(&common::mysql_url(), &prefix) else {
        return;
    };
    let analyze = || {
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("connects");
        conn.batch_execute(&format!("ANALYZE TABLE {prefix}jobs, {prefix}done"))
            .expect("analyze");
    };
    estimate_stats(&backend, analyze, true);
}
