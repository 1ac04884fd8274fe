//! Crash: 20,000 jobs, each recording its run in the sink; the consumer, a
//! real daemon with 4 threads, is SIGKILLed 5 times at random moments and
//! restarted each time. At the end every job has run, none is dead, and the
//! only duplicates are jobs that were in flight at a kill: at most
//! kills × threads. The same runs once more on Redis with a prefetch of 12:
//! then at most kills × (threads + prefetch).
//!
//! The moments are random points of progress (a count of jobs that ran,
//! between 5 % and 90 % of them, plus 0–100 ms), drawn from a seed that is printed;
//! replay one with `OUTBAND_RELIABILITY_SEED=<seed>`. Leases are 3 s, so a
//! killed consumer's jobs are back in the queue within about 5 s.
//!
//! Run it alone, on every backend (servers as in `.env.sample`):
//!
//! ```sh
//! OUTBAND_REQUIRE_SERVERS=1 cargo test -p outband-reliability --features servers --test crash -- --nocapture
//! ```
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::time::{Duration, Instant};

use outband_reliability::scenario::{Backend, Scene, seed};
use outband_testkit::{kill, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_outband-reliability-consumer");

const JOBS: u64 = 20_000;
const KILLS: u64 = 5;
const THREADS: u64 = 4;
const CONSUMER: &[&str] = &["-t", "4", "--lease", "3s"];
const PREFETCH: u64 = 12;
const PREFETCHING: &[&str] = &["-t", "4", "--prefetch", "12", "--lease", "3s"];

macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* $(,)?) => {
        $(#[test] fn $backend() { crash(Backend::$variant, "", CONSUMER, THREADS) })*
    };
}

on_every_backend!(sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis);

/// Jobs claimed ahead are leases too: a kill makes them run again.
#[test]
fn redis_with_prefetch() {
    crash(Backend::Redis, "+prefetch", PREFETCHING, THREADS + PREFETCH);
}

fn crash(backend: Backend, variant: &str, consumer: &[&str], leases: u64) {
    let Some(mut scene) = Scene::new(backend, BIN) else {
        return;
    };
    let name = format!("crash/{}{variant}", backend.name());
    let mut rng = fastrand::Rng::with_seed(seed(&name));
    let started = Instant::now();

    let jobs: Vec<_> = (0..JOBS).map(Scene::record_job).collect();
    for batch in jobs.chunks(1_000) {
        scene
            .backend()
            .enqueue_many(batch.to_vec())
            .expect("enqueueing a batch");
    }

    let mut moments: Vec<u64> = (0..KILLS)
        .map(|_| rng.u64(JOBS / 20..JOBS * 9 / 10))
        .collect();
    moments.sort_unstable();
    let mut pid = scene.start("c", consumer);
    for (kill_no, moment) in moments.iter().enumerate() {
        scene.wait_recorded(*moment, Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(rng.u64(0..100)));
        let ran = scene.sink().jobs_recorded().expect("reading the sink");
        kill("-9", pid);
        wait_until(
            "the killed consumer is dead",
            Duration::from_secs(30),
            || scene.status("c") == 1,
        );
        println!(
            "{name}: kill {} at {:?}, {ran} jobs had run",
            kill_no + 1,
            started.elapsed()
        );
        pid = scene.start("c", consumer);
    }

    scene.wait_drained(JOBS, Duration::from_secs(300));
    scene.stop("c");
    let summary = scene.summary(0..JOBS);
    println!("{name}: took {:?}", started.elapsed());
    summary.check(&name, KILLS * leases);
    assert_eq!(summary.dead, 0, "{name}: no job may end dead: {summary}");
    assert_eq!(summary.done, JOBS, "{name}: every job ran: {summary}");
    let killed_attempts = scene.log("c").matches("expired leases returned").count();
    assert!(
        killed_attempts > 0,
        "{name}: a restarted consumer's manager returned the killed consumer's leases"
    );
}
