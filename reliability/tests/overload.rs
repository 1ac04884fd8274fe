//! Overload: 4 producer threads enqueue 200,000 jobs, in batches of 500, as
//! fast as the backend takes them, while 2 consumer daemons (32 threads
//! each, so that a claim and a recorded batch of outcomes serve up to 32
//! jobs in one transaction) run. Proves that:
//!
//! - every enqueue the backend acknowledged ran (nothing silently lost);
//!   an enqueue that failed is counted and reported, never hidden: the
//!   producer side gets backpressure (a slow `enqueue_many`) or an error;
//! - each consumer's memory stays bounded however deep the queue gets: its
//!   peak RSS (`VmHWM`) is printed and must stay under 256 MiB, since a
//!   consumer claims only for its free threads;
//! - the only duplicates are runs whose outcome was not recorded, and with
//!   no crash there are none.
//!
//! Prints the enqueue and drain times, the deepest queue seen and each
//! consumer's peak RSS, then the summary line.
//!
//! `OUTBAND_RELIABILITY_OVERLOAD_JOBS=<n>` runs it with `n` jobs instead
//! (rounded up to whole batches), and says so in its output.
//!
//! Run it alone, on every backend (servers as in `.env.sample`):
//!
//! ```sh
//! OUTBAND_REQUIRE_SERVERS=1 cargo test -p outband-reliability --features servers --test overload -- --nocapture
//! ```
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outband_reliability::scenario::{Backend, Kind, QUEUE, Scene, peak_rss_kib};

const BIN: &str = env!("CARGO_BIN_EXE_outband-reliability-consumer");

/// The jobs of the scenario, unless `OUTBAND_RELIABILITY_OVERLOAD_JOBS`
/// says otherwise (the count is printed either way).
const JOBS: u64 = 200_000;
const JOBS_ENV: &str = "OUTBAND_RELIABILITY_OVERLOAD_JOBS";
const PRODUCERS: u64 = 4;
const BATCH: u64 = 500;
const CONSUMERS: [&str; 2] = ["a", "b"];
const CONSUMER: &[&str] = &["-t", "32"];
/// The most a consumer may hold in memory, in KiB: generous, as a bound
/// against growth with the queue's depth, not a measure of speed.
const RSS_BOUND_KIB: u64 = 256 * 1024;

macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* $(,)?) => {
        $(#[test] fn $backend() { overload(Backend::$variant) })*
    };
}

on_every_backend!(sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis);

/// What one producer thread got back from the backend.
#[derive(Debug, Default)]
struct Produced {
    acked: Vec<u64>,
    errors: u64,
}

fn overload(backend: Backend) {
    let Some(mut scene) = Scene::new(backend, Kind::Sync, BIN) else {
        return;
    };
    let name = format!("overload/{}", backend.name());
    let jobs = std::env::var(JOBS_ENV)
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(JOBS, |n| n.div_ceil(PRODUCERS * BATCH) * PRODUCERS * BATCH);
    if jobs != JOBS {
        println!("{name}: {jobs} jobs instead of {JOBS}, as {JOBS_ENV} asks");
    }
    let pids: Vec<u32> = CONSUMERS.iter().map(|c| scene.start(c, CONSUMER)).collect();

    let started = Instant::now();
    let producing = AtomicBool::new(true);
    let deepest = AtomicU64::new(0);
    let (produced, enqueue_time) = std::thread::scope(|s| {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let backend = scene.backend();
                s.spawn(move || {
                    let mut produced = Produced::default();
                    let per_producer = jobs / PRODUCERS;
                    let keys: Vec<u64> = (p * per_producer..(p + 1) * per_producer).collect();
                    for batch in keys.chunks(BATCH as usize) {
                        let jobs = batch.iter().map(|&k| Kind::Sync.record_job(k)).collect();
                        match backend.enqueue_many(jobs) {
                            Ok(ids) => {
                                assert_eq!(ids.len(), batch.len(), "one id per job");
                                produced.acked.extend_from_slice(batch);
                            }
                            Err(error) => {
                                eprintln!(
                                    "producer {p}: a batch of {} failed: {error}",
                                    batch.len()
                                );
                                produced.errors += batch.len() as u64;
                            }
                        }
                    }
                    produced
                })
            })
            .collect();
        s.spawn(|| {
            while producing.load(Ordering::Relaxed) {
                if let Ok(pending) = scene.backend().len(QUEUE) {
                    deepest.fetch_max(pending, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let produced: Vec<Produced> = producers
            .into_iter()
            .map(|p| p.join().expect("a producer thread"))
            .collect();
        producing.store(false, Ordering::Relaxed);
        (produced, started.elapsed())
    });
    let acked: Vec<u64> = produced.iter().flat_map(|p| p.acked.clone()).collect();
    let errors: u64 = produced.iter().map(|p| p.errors).sum();
    println!(
        "{name}: enqueued {} jobs in {enqueue_time:?} ({errors} refused with an error), deepest queue {}",
        acked.len(),
        deepest.load(Ordering::Relaxed)
    );

    scene.wait_drained(acked.len() as u64, Duration::from_secs(900));
    println!("{name}: drained after {:?}", started.elapsed());
    let peaks: Vec<u64> = pids
        .iter()
        .map(|&pid| peak_rss_kib(pid).expect("a running consumer's /proc status"))
        .collect();
    for (consumer, peak) in CONSUMERS.iter().zip(&peaks) {
        println!("{name}: consumer {consumer} peak RSS {} MiB", peak / 1024);
    }
    for consumer in CONSUMERS {
        scene.stop(consumer);
    }

    let summary = scene.summary(acked);
    summary.check(&name, 0);
    assert_eq!(
        summary.jobs + errors,
        jobs,
        "{name}: every enqueue answered"
    );
    assert_eq!(
        summary.done, summary.jobs,
        "{name}: every acknowledged job ran"
    );
    for (consumer, peak) in CONSUMERS.iter().zip(peaks) {
        assert!(
            peak < RSS_BOUND_KIB,
            "{name}: consumer {consumer} peaked at {} MiB, over {} MiB",
            peak / 1024,
            RSS_BOUND_KIB / 1024
        );
    }
}
