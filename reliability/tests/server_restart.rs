//! **Server restart**: the backend's server goes down and comes back in the
//! middle of a run, while a producer enqueues and a consumer works; no
//! acknowledged enqueue is lost, and neither side is restarted.
//!
//! Each backend gets a private server on a free port (the shared ones are
//! never restarted), from `outband_reliability::servers`:
//!
//! - **Redis** with `appendonly yes`, killed with `SIGKILL` and started again
//!   on the same AOF;
//! - **PostgreSQL**, a private cluster (`initdb`, `pg_ctl`, as `nobody` when
//!   run as root), stopped (`pg_ctl stop -m fast`) and started;
//! - **MariaDB** (`mariadb-install-db`, `mariadbd`), stopped with `SIGTERM`
//!   and started.
//!
//! SQLite has no server: it is a file in the consumer's own process, so its
//! restart is the consumer's crash, which the crash scenario covers.
//!
//! A producer thread enqueues one job at a time and keeps the ids the backend
//! acknowledged; while the server is down its enqueues fail at once as
//! unavailable (and are not acknowledged). A `MultiProcessor` consumes, and a
//! manager thread takes expired leases back. After 200 acknowledged jobs the
//! server goes down for 1.5 s (longer than the pools' 1 s connect timeout, so
//! the producer's enqueues are refused for a while; how many is printed, not
//! asserted, as a call may also just wait out a short outage); after 200 more
//! the producer stops.
//! The test then asserts that every acknowledged job is done by the same
//! consumer, and that duplicates stay
//! within 8 (twice the consumer's threads: a job runs again only when its
//! outcome was lost with the connection and its lease expired). It prints its
//! summary line.
//!
//! Run it alone: `cargo test -p outband-reliability --features servers --test server_restart`
//! (add `-- --nocapture` to see the summary lines).
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outband::{
    BaseQueue, JobId, JobState, MultiProcessor, ProcessorConfig, RetryPolicy, queue_command,
};
use outband_diesel::DatabaseQueue;
use outband_redis::{RedisOptions, RedisQueue};
use outband_reliability::servers::{PrivateMariadb, PrivatePostgres, PrivateRedis};
use outband_reliability::{RunCounts, Summary};
use outband_testkit::{unique_name, wait_until};

const THREADS: usize = 4;
const BEFORE: usize = 200;
const AFTER: usize = 200;

/// Runs of each job, by its number (numbers of different backends differ).
static RUNS: RunCounts = RunCounts::new();

/// The longest wait for a step of the scenario; it only guards against a hang.
const WAIT: Duration = Duration::from_secs(120);

/// Counts its run.
#[queue_command(name = "reliability::server_restart::record", queue = "restart")]
fn record(n: u64) {
    RUNS.record(n);
}

/// Sets its flag when dropped, also while a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The scenario on `backend`, whose server `outage` stops and starts again.
fn scenario(name: &str, base: u64, backend: &Arc<dyn BaseQueue>, outage: impl FnOnce()) {
    let config = ProcessorConfig::default()
        .queues(["restart"])
        .wait_time(Duration::from_millis(20))
        .lease(Duration::from_secs(2))
        .max_threads(THREADS)
        .retry(RetryPolicy::immediate());
    let consumer = MultiProcessor::new(Arc::clone(backend), config).expect("a processor");
    consumer.start();

    let acknowledged = Mutex::new(Vec::<(JobId, u64)>::new());
    let refused = Mutex::new(0u64);
    let last_refusal = Mutex::new(String::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // the manager: takes back the leases of jobs whose outcome was lost
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let _ = backend.recover_expired();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // the producer: keeps what the backend acknowledged
        scope.spawn(|| {
            let mut n = base;
            while !stop.load(Ordering::SeqCst) {
                match record::enqueue_on(&*backend, n) {
                    Ok(id) => acknowledged.lock().unwrap().push((id, n)),
                    Err(error) => {
                        assert!(error.is_retryable(), "{name}: {error}");
                        *refused.lock().unwrap() += 1;
                        *last_refusal.lock().unwrap() = error.to_string();
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // the threads stop however this ends, so a failed wait is reported
        let _stop = StopOnDrop(&stop);
        let count = || acknowledged.lock().unwrap().len();
        wait_until("the first jobs", WAIT, || count() >= BEFORE);
        outage();
        let after_outage = count();
        let give_up = Instant::now() + Duration::from_secs(120);
        while count() < after_outage + AFTER {
            assert!(
                Instant::now() < give_up,
                "{name}: enqueues did not resume after the outage; the last refusal: {}",
                last_refusal.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    let refused = refused.into_inner().unwrap();

    // the same consumer does every acknowledged job
    let give_up = Instant::now() + Duration::from_secs(120);
    let mut summary = Summary {
        jobs: acknowledged.len() as u64,
        ..Summary::default()
    };
    let mut left: Vec<(JobId, u64)> = acknowledged.clone();
    while !left.is_empty() && Instant::now() < give_up {
        assert!(consumer.is_processing(), "{name}: the consumer stopped");
        let _ = backend.recover_expired();
        left.retain(
            |&(id, _)| !matches!(backend.job(id), Ok(Some(job)) if job.state == JobState::Done),
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    consumer.stop();
    for &(id, n) in &acknowledged {
        match backend
            .job(id)
            .expect("the server is up")
            .map(|job| job.state)
        {
            Some(JobState::Done) if RUNS.runs_of(n) > 0 => {
                summary.done += 1;
                summary.duplicates += u64::from(RUNS.runs_of(n) - 1);
            }
            Some(JobState::Dead) => summary.dead += 1,
            other => {
                eprintln!("{name}: acknowledged job {id} ({n}) ended {other:?}");
                summary.lost += 1;
            }
        }
    }
    println!("{name}: {refused} enqueues refused while the server was down");
    summary.check(name, 2 * THREADS as u64);
    assert_eq!(summary.done, summary.jobs, "{name}: every job is done");
}

#[test]
fn server_restart_redis() {
    let Some(mut server) = PrivateRedis::start(&["--appendonly", "yes"]) else {
        return;
    };
    let options = RedisOptions::default().namespace(unique_name("restart-"));
    let backend = RedisQueue::with_options(&server.url(), options).expect("a valid URL");
    scenario(
        "server_restart/redis",
        0,
        &(Arc::new(backend) as Arc<dyn BaseQueue>),
        || {
            server.kill();
            std::thread::sleep(Duration::from_millis(1500));
            server.restart();
        },
    );
}

#[test]
fn server_restart_postgres() {
    let Some(mut server) = PrivatePostgres::start() else {
        return;
    };
    let backend = DatabaseQueue::builder(server.url())
        .prefix(format!("{}_", unique_name("r")))
        .max_connections(THREADS as u32 + 4)
        .connect_timeout(Duration::from_secs(1))
        .open()
        .expect("open the private server");
    scenario(
        "server_restart/postgres",
        1_000_000,
        &(Arc::new(backend) as Arc<dyn BaseQueue>),
        || {
            server.stop("fast");
            std::thread::sleep(Duration::from_millis(1500));
            server.start_again();
        },
    );
}

#[test]
fn server_restart_mariadb() {
    let Some(mut server) = PrivateMariadb::start() else {
        return;
    };
    let backend = DatabaseQueue::builder(server.url())
        .prefix(format!("{}_", unique_name("r")))
        .max_connections(THREADS as u32 + 4)
        .connect_timeout(Duration::from_secs(1))
        .open()
        .expect("open the private server");
    scenario(
        "server_restart/mariadb",
        2_000_000,
        &(Arc::new(backend) as Arc<dyn BaseQueue>),
        || {
            server.stop();
            std::thread::sleep(Duration::from_millis(1500));
            server.start_again();
        },
    );
}
