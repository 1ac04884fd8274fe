//! What PostgreSQL pushes besides the idle consumers' wake-up: the end of
//! an awaited job to its waiters, however it ends and whichever queue
//! handle ends it, and cancel requests to the processors' cancel feeds.
//! Each waiter waits with a long timeout, and returning well before it
//! means the notification woke it.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use outband::{
    BaseQueue, Cancellation, Completion, Error, JobContext, JobError, JobId, JobState,
    MultiProcessor, NewJob, Outcome, ProcessorConfig, queue_command,
};
use outband_diesel::DatabaseQueue;
use outband_testkit::wait_until;

/// How long each waiter is willing to wait.
const LONG: Duration = Duration::from_secs(60);

/// Returned this much before [`LONG`]: woken.
const WOKEN: Duration = Duration::from_secs(30);

const LEASE: Duration = Duration::from_secs(60);

/// Runs until its context is cancelled, then fails, as a command that
/// gives up would: a retry that the cancel turns into `cancelled`.
#[queue_command(queue = "pg-pushed-cancel", retries = 5)]
fn until_cancelled(ctx: &JobContext) -> Result<(), String> {
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("stopped before the end".into())
}

fn job(queue: &str) -> NewJob {
    NewJob::new(
        "app::job",
        outband::codec::encode(&(1u64,)).expect("encodes"),
    )
    .queue(queue)
}

fn done() -> Outcome {
    Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    }
}

/// A second queue handle on the tables of `backend`, with a pool and
/// listening connections of its own, as another process would open them.
fn same_tables(backend: &DatabaseQueue) -> DatabaseQueue {
    DatabaseQueue::builder(common::pg_url())
        .prefix(backend.prefix())
        .run_migrations(false)
        .open()
        .expect("open again")
}

/// Runs `waiters`, each waiting for `id` with [`LONG`] on a thread of its
/// own, while `finish` ends the job, and returns how long each waited.
fn waits_while(waiters: &[&DatabaseQueue], id: JobId, finish: impl FnOnce()) -> Vec<Duration> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = waiters
            .iter()
            .map(|backend| {
                scope.spawn(move || {
                    let start = Instant::now();
                    backend.wait_finished(id, LONG).expect("wait_finished");
                    start.elapsed()
                })
            })
            .collect();
        // give the waiters time to mark the job and listen; one that has
        // not finds the job ended and returns at once, which passes too
        std::thread::sleep(Duration::from_millis(300));
        finish();
        threads
            .into_iter()
            .map(|t| t.join().expect("a waiter"))
            .collect()
    })
}

fn assert_woken(what: &str, waited: &[Duration]) {
    assert!(
        waited.iter().all(|&took| took < WOKEN),
        "waiters for a job that {what} returned after {waited:?}, not when it ended"
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The sessions of the database listening on `channel`, as far as
/// `pg_stat_activity` shows: the last statement of an idle listening
/// connection is its `LISTEN`.
fn listening(conn: &mut PgConnection, channel: &str) -> i64 {
    diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM pg_stat_activity \
         WHERE state = 'idle' AND query = 'LISTEN \"{channel}\"'"
    ))
    .get_result::<Count>(conn)
    .expect("count")
    .n
}

/// Waiters of one job on two queue handles, three on one, all wake when
/// the other handle ends it; the handle's one listening connection then
/// stops listening.
#[test]
fn several_waiters_on_one_job_all_wake() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let other = same_tables(&backend);
    let id = backend.enqueue(job("many")).expect("enqueue");
    let claimed = other.claim("many", 1, LEASE).expect("claim");
    let waited = waits_while(&[&backend, &backend, &backend, &other], id, || {
        let completed = other.complete(&claimed[0].lease, done()).expect("complete");
        assert_eq!(completed, Completion::Applied);
    });
    assert_woken("ended done", &waited);

    let mut observer = PgConnection::establish(&common::pg_url()).expect("a connection");
    let channel = format!("{}finished", backend.prefix());
    wait_until("the waiters' connections stop listening", None, || {
        listening(&mut observer, &channel) == 0
    });
}

/// A job whose expired lease recovery sends to `dead`, its attempts spent,
/// wakes its waiter.
#[test]
fn a_job_recovery_sends_to_dead_wakes_its_waiter() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let id = backend
        .enqueue(job("recovered").max_attempts(1))
        .expect("enqueue");
    let claimed = backend
        .claim("recovered", 1, Duration::ZERO)
        .expect("claim");
    assert_eq!(claimed.len(), 1, "claimed, its lease already expired");
    let waited = waits_while(&[&backend], id, || {
        let recovered = backend.recover_expired().expect("recover");
        assert_eq!((recovered.dead, recovered.requeued), (1, 0));
    });
    assert_woken("recovery sent to dead", &waited);
    let job = backend.job(id).expect("job").expect("kept");
    assert_eq!(job.state, JobState::Dead);
}

/// An awaited job recorded done by `complete_and_claim`, the statement
/// that moves it to the done table and claims the next job, wakes its
/// waiter; the job claimed with it is not awaited, and ends unheard.
#[test]
fn an_awaited_job_done_in_complete_and_claim_wakes_its_waiter() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let ids = backend
        .enqueue_many(vec![job("next"), job("next")])
        .expect("enqueue");
    let first = backend.claim("next", 1, LEASE).expect("claim");
    assert_eq!(first[0].job.id, ids[0]);
    let mut next = Vec::new();
    let waited = waits_while(&[&backend], ids[0], || {
        let (completed, claimed) = backend
            .complete_and_claim(vec![(first[0].lease.clone(), done())], "next", 1, LEASE)
            .expect("complete_and_claim");
        assert_eq!(completed, vec![Completion::Applied]);
        next = claimed;
    });
    assert_woken("ended done in complete_and_claim", &waited);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job.id, ids[1]);
    let stored = backend.job(ids[0]).expect("job").expect("kept");
    assert_eq!(stored.state, JobState::Done);
}

/// A pending job's waiter wakes when the job is cancelled, and when it is
/// flushed away; a job marked awaited by an earlier wait wakes a later
/// waiter too.
#[test]
fn waiters_of_pending_jobs_wake_when_they_go() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let cancelled = backend.enqueue(job("pending")).expect("enqueue");
    backend
        .wait_finished(cancelled, Duration::from_millis(50))
        .expect("a first wait that times out");
    let waited = waits_while(&[&backend], cancelled, || {
        let answer = backend.cancel(cancelled, "not wanted").expect("cancel");
        assert_eq!(answer, Cancellation::Cancelled);
    });
    assert_woken("was cancelled pending", &waited);

    let flushed = backend
        .enqueue(job("pending").when(Duration::from_secs(3600)))
        .expect("enqueue");
    let waited = waits_while(&[&backend], flushed, || {
        assert_eq!(backend.flush("pending").expect("flush"), 1);
    });
    assert_woken("was flushed", &waited);
    assert!(backend.job(flushed).expect("job").is_none());
}

/// A row no producer could have written (no attempts allowed), which a
/// claim sends to `dead`, wakes its waiter.
#[test]
fn a_malformed_job_a_claim_sends_to_dead_wakes_its_waiter() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let mut conn = PgConnection::establish(&common::pg_url()).expect("a connection");
    let id = diesel::sql_query(format!(
        "INSERT INTO {}jobs (command, args, queue, priority, max_attempts, attempt, state, \
         token, run_at, enqueued_at) VALUES ('app::job', '\\x01'::bytea, 'malformed', 0, 0, 0, \
         0, 0, 0, 0) RETURNING id AS n",
        backend.prefix()
    ))
    .get_result::<Count>(&mut conn)
    .expect("insert a bad row")
    .n;
    let id = JobId(id.unsigned_abs());
    let waited = waits_while(&[&backend], id, || {
        let claimed = backend.claim("malformed", 1, LEASE).expect("claim");
        assert!(claimed.is_empty(), "{claimed:?}");
    });
    assert_woken("a claim sent to dead", &waited);
    let job = backend.job(id).expect("job").expect("kept");
    assert_eq!(job.state, JobState::Dead);
}

/// A feed gives nothing across empty timeouts, then the id of each running
/// job `cancel` marks, including those marked between two calls of `next`,
/// to every feed open; a pending job's cancel is no cancel of a running
/// job, and reaches no feed.
#[test]
fn a_cancel_feed_yields_ids_across_empty_timeouts() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let mut feed = backend
        .cancel_feed()
        .expect("cancel_feed")
        .expect("PostgreSQL pushes cancels");
    let mut other = same_tables(&backend)
        .cancel_feed()
        .expect("cancel_feed")
        .expect("a second feed");
    let empty = |feed: &mut Box<dyn outband::CancelFeed>| {
        for _ in 0..3 {
            let start = Instant::now();
            let ids = feed.next(Duration::from_millis(100)).expect("next");
            assert!(ids.is_empty(), "{ids:?}");
            assert!(start.elapsed() >= Duration::from_millis(100));
        }
    };
    empty(&mut feed);

    let ids = backend
        .enqueue_many(vec![job("feed"), job("feed"), job("feed")])
        .expect("enqueue");
    let claimed = backend.claim("feed", 2, LEASE).expect("claim");
    assert_eq!(claimed.len(), 2);
    for &id in &ids {
        let answer = backend.cancel(id, "stop").expect("cancel");
        let expected = if id == ids[2] {
            Cancellation::Cancelled
        } else {
            Cancellation::Requested
        };
        assert_eq!(answer, expected);
    }
    for feed in [&mut feed, &mut other] {
        let mut received = Vec::new();
        let deadline = Instant::now() + WOKEN;
        while !(received.contains(&ids[0]) && received.contains(&ids[1])) {
            assert!(Instant::now() < deadline, "received only {received:?}");
            received.extend(feed.next(Duration::from_secs(1)).expect("next"));
        }
        assert!(!received.contains(&ids[2]), "{received:?}");
    }
    empty(&mut feed);
}

/// A feed whose connection the server ends fails its next call, as
/// unavailable; a feed opened again hears the next request.
#[test]
fn a_cancel_feed_whose_connection_is_lost_fails() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let mut feed = backend
        .cancel_feed()
        .expect("cancel_feed")
        .expect("PostgreSQL pushes cancels");
    let mut admin = PgConnection::establish(&common::pg_url()).expect("a connection");
    let channel = format!("{}cancels", backend.prefix());
    #[derive(QueryableByName)]
    struct Ended {
        #[diesel(sql_type = Integer)]
        n: i32,
    }
    let ended = diesel::sql_query(format!(
        "SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity \
         WHERE query = 'LISTEN \"{channel}\"'"
    ))
    .get_result::<Ended>(&mut admin)
    .expect("terminate")
    .n;
    assert_eq!(ended, 1, "the feed's connection");
    let deadline = Instant::now() + WOKEN;
    let error = loop {
        match feed.next(Duration::from_millis(100)) {
            Err(error) => break error,
            Ok(ids) => assert!(ids.is_empty(), "{ids:?}"),
        }
        assert!(Instant::now() < deadline, "the feed never failed");
    };
    assert!(matches!(error, Error::Unavailable(_)), "{error}");

    let mut feed = backend
        .cancel_feed()
        .expect("cancel_feed")
        .expect("opened again");
    let id = backend.enqueue(job("lost")).expect("enqueue");
    backend.claim("lost", 1, LEASE).expect("claim");
    backend.cancel(id, "stop").expect("cancel");
    let mut received = Vec::new();
    while !received.contains(&id) {
        assert!(Instant::now() < deadline, "received only {received:?}");
        received.extend(feed.next(Duration::from_secs(1)).expect("next"));
    }
}

/// With a ten-minute lease a processor heartbeats every hundred seconds:
/// a running job that stops within thirty seconds of its cancel was
/// stopped by the push, through the processor's cancel feed. Its handle,
/// waiting on the job's end, wakes with the cancel.
#[test]
fn a_processor_stops_a_cancelled_job_long_before_its_heartbeat() {
    let Some(backend) = common::server_queue(&common::pg_url()) else {
        return;
    };
    let backend = Arc::new(backend);
    let id = backend
        .enqueue(until_cancelled::job().expect("a job"))
        .expect("enqueue");
    let config = ProcessorConfig::default()
        .queues(["pg-pushed-cancel"])
        .wait_time(Duration::from_millis(10))
        .lease(Duration::from_secs(600));
    let processor = MultiProcessor::new(backend.clone(), config).expect("a processor");
    processor.start();
    let state = |id| backend.job(id).expect("job").expect("kept").state;
    wait_until("the job runs", None, || state(id) == JobState::Running);
    let handle = until_cancelled::handle(id).on(&backend);
    let waited = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let start = Instant::now();
            let ended = handle.wait(LONG);
            (ended, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            backend.cancel(id, "pushed").expect("cancel"),
            Cancellation::Requested
        );
        waiter.join().expect("the waiter")
    });
    let (ended, took) = waited;
    assert!(
        matches!(&ended, Err(JobError::Cancelled { reason, .. }) if reason == "pushed"),
        "{ended:?}"
    );
    assert!(took < WOKEN, "stopped after {took:?}");
    assert_eq!(state(id), JobState::Cancelled);
    processor.stop();
}
