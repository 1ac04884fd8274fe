//! **Limits across processes.**
//!
//! *Concurrency*: 4 consumer processes of 8
//! threads each share one queue holding 60 jobs of `reliability::limited`
//! (`concurrency = 3`, each sleeping 30 ms) and 300 unlimited jobs
//! enqueued after them. Each limited run logs when it started and ended;
//! the most runs that overlap in time must be at most 3 (and reach more
//! than 1, or the limit would not have been tested). Every job runs, and
//! none is lost.
//!
//! The overlap is measured inside the command, so it can only be smaller
//! than the time the backend holds the job `running`: any overlap above 3
//! is a broken limit. The scenario runs on SQLite, PostgreSQL, MariaDB and
//! Redis, and prints the overlap it saw.
//!
//! *Rate*: 4 consumer processes (the daemon's default threads and prefetch) share a backlog of
//! 1,100 jobs of `reliability::rated` (`rate = "50/s"`, 22 s of work at
//! that rate) and 200 unlimited jobs. Each run logs when it started; in
//! every whole 5-second window from the first start, the starts must number
//! 250 ± 10 %.
//!
//! Run it alone: `cargo test -p outband-reliability --features servers --test limits -- --nocapture`
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::time::Duration;

use outband::{Concurrency, NewJob, RateLimit, codec};
use outband_reliability::scenario::{
    Backend, Consumer, Kind, LIMITED, MAX_ATTEMPTS, QUEUE, RATED, Scene,
};

const BIN: &str = env!("CARGO_BIN_EXE_outband-reliability-consumer");

const LIMIT: u32 = 3;
const LIMITED_JOBS: u64 = 60;
const FREE_JOBS: u64 = 300;
const CONSUMERS: [&str; 4] = ["a", "b", "c", "d"];

macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* $(,)?) => {
        $(#[test] fn $backend() { limits_hold(Backend::$variant) })*
        mod rates {
            use super::{Backend, rates_hold};
            $(#[test] fn $backend() { rates_hold(Backend::$variant) })*
        }
    };
}

on_every_backend!(sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis);

/// Enqueues `limited`, then `FREE_JOBS` unlimited jobs numbered after
/// them, runs the consumers with `args` until every job ran (at most
/// `timeout_secs`), stops them, and checks that no job was lost.
fn run_beside_free(scene: &mut Scene, limited: Vec<NewJob>, args: &[String], timeout_secs: u64) {
    let first_free = limited.len() as u64;
    let all = first_free + FREE_JOBS;
    scene
        .backend()
        .enqueue_many(limited)
        .expect("enqueue limited");
    let free = (first_free..all).map(|job| scene.record_job(job)).collect();
    scene.backend().enqueue_many(free).expect("enqueue free");
    for name in CONSUMERS {
        scene.start(name, args);
    }
    scene.wait_drained(all, Duration::from_secs(timeout_secs));
    for name in CONSUMERS {
        scene.stop(name);
    }
    let summary = scene.summary(0..all);
    assert_eq!(summary.lost, 0, "{}: {summary:?}", scene.kind().name());
}

fn limits_hold(backend: Backend) {
    let Some(mut scene) = Scene::new(backend, Kind::Sync, BIN) else {
        return;
    };
    // The job as `reliability::limited`'s macro builds it: its key is the
    // command's name.
    let limited: Vec<NewJob> = (0..LIMITED_JOBS)
        .map(|job| {
            NewJob::new(LIMITED, codec::encode(&(job, 30u64)).expect("encodes"))
                .queue(QUEUE)
                .max_attempts(MAX_ATTEMPTS)
                .concurrency(Concurrency::new(LIMITED, LIMIT))
        })
        .collect();
    run_beside_free(&mut scene, limited, &Consumer::threads(8).args(), 240);
    let log = std::fs::read_to_string(scene.path("limited.log")).expect("limited.log");
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for line in log.lines() {
        let (start, end) = line.split_once(' ').expect("`start end`");
        edges.push((start.parse().expect("start"), 1));
        edges.push((end.parse().expect("end"), -1));
    }
    assert!(
        edges.len() as u64 >= 2 * LIMITED_JOBS,
        "{}: {} limited runs logged",
        backend.name(),
        edges.len() / 2
    );
    // ends sort before starts at the same instant: touching runs do not overlap
    edges.sort_unstable();
    let (mut running, mut most) = (0, 0);
    for (_, change) in edges {
        running += change;
        most = most.max(running);
    }
    println!(
        "limits {}: {} consumers x 8 threads, limit {LIMIT}: at most {most} limited runs at once",
        backend.name(),
        CONSUMERS.len()
    );
    assert!(
        most <= LIMIT as i32,
        "{}: {most} runs of a command limited to {LIMIT} overlapped",
        backend.name()
    );
    assert!(
        most > 1,
        "{}: the limited runs never overlapped",
        backend.name()
    );
}

const RATE: u32 = 50;
const RATED_JOBS: u64 = 1_100;
const WINDOW: Duration = Duration::from_secs(5);

fn rates_hold(backend: Backend) {
    let Some(mut scene) = Scene::new(backend, Kind::Sync, BIN) else {
        return;
    };
    assert!(
        scene.backend().capabilities().rate_limits,
        "{}: the backend says it does not enforce rate limits",
        backend.name()
    );
    // The job as `reliability::rated`'s macro builds it.
    let rated: Vec<NewJob> = (0..RATED_JOBS)
        .map(|job| {
            NewJob::new(RATED, codec::encode(&(job,)).expect("encodes"))
                .queue(QUEUE)
                .max_attempts(MAX_ATTEMPTS)
                .rate(RateLimit::new(RATED, RATE, Duration::from_secs(1)))
        })
        .collect();
    run_beside_free(&mut scene, rated, &[], 120);

    let log = std::fs::read_to_string(scene.path("rated.log")).expect("rated.log");
    let mut starts: Vec<u128> = log
        .lines()
        .map(|line| line.parse().expect("a start"))
        .collect();
    starts.sort_unstable();
    assert!(
        starts.len() as u64 >= RATED_JOBS,
        "{} starts logged",
        starts.len()
    );
    let (first, last) = (starts[0], starts[starts.len() - 1]);
    let window = WINDOW.as_nanos();
    let expected = f64::from(RATE) * WINDOW.as_secs_f64();
    let mut counts = Vec::new();
    let mut from = first;
    while from + window <= last {
        let count = starts
            .iter()
            .filter(|&&at| at >= from && at < from + window)
            .count();
        counts.push(count);
        from += window;
    }
    println!(
        "rates {}: {} consumers, limit {RATE}/s: starts per 5 s window {counts:?} (expected {expected})",
        backend.name(),
        CONSUMERS.len()
    );
    assert!(
        counts.len() >= 3,
        "{}: the backlog lasted under 15 s: {counts:?}",
        backend.name()
    );
    for count in counts {
        let off = (count as f64 - expected).abs() / expected;
        assert!(
            off <= 0.10,
            "{}: {count} starts in a 5 s window, {:.0} % off {expected}",
            backend.name(),
            off * 100.0
        );
    }
}
