//! Crash: 20,000 jobs, each recording its run in the sink; the consumer, a
//! real daemon with 4 threads, is SIGKILLed 5 times at random moments and
//! restarted each time. At the end every job has run, none is dead, and the
//! only duplicates are jobs that were in flight at a kill: at most kills ×
//! the leases a consumer holds, `threads + prefetch + concurrency`
//! (`Consumer::leases`), with the daemon's default adaptive prefetch
//! counted at its most, 32. The same runs once more on Redis with a fixed
//! prefetch of 12, and on every backend with async commands: 4,000 jobs that each
//! wait 1–20 ms on a timer, up to 32 at once on the consumer's runtime.
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

use outband_reliability::scenario::{Backend, Consumer, Kind, Scene, seed};
use outband_testkit::{kill, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_outband-reliability-consumer");

const KILLS: u64 = 5;
const LEASE: &[&str] = &["--lease", "3s"];

macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* $(,)?) => {
        $(#[test] fn $backend() { crash(Backend::$variant, Kind::Sync, consumer(Kind::Sync), "") })*
        mod async_commands {
            use super::{Backend, Kind, consumer, crash};
            $(#[test] fn $backend() {
                crash(Backend::$variant, Kind::Async, consumer(Kind::Async), "")
            })*
        }
    };
}

on_every_backend!(sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis);

/// Jobs claimed ahead are leases too: a kill makes them run again.
#[test]
fn redis_with_prefetch() {
    let consumer = consumer(Kind::Sync).prefetch(12);
    crash(Backend::Redis, Kind::Sync, consumer, "+prefetch");
}

/// The consumer: 4 threads for sync jobs, 32 async slots for async ones.
const fn consumer(kind: Kind) -> Consumer {
    match kind {
        Kind::Sync => Consumer::running(kind, 4),
        Kind::Async => Consumer::running(kind, 32),
    }
}

/// The jobs: sync ones record their run at once; async ones wait 1–20 ms
/// on a timer first, so that the consumer's async jobs overlap.
fn jobs(scene: &Scene, rng: &mut fastrand::Rng) -> Vec<outband::NewJob> {
    match scene.commands() {
        Kind::Sync => (0..20_000).map(|job| scene.record_job(job)).collect(),
        Kind::Async => (0..4_000)
            .map(|job| scene.slow_record_job(job, rng.u64(1..=20)))
            .collect(),
    }
}

fn crash(backend: Backend, kind: Kind, consumer: Consumer, variant: &str) {
    let Some(mut scene) = Scene::new(backend, kind, BIN) else {
        return;
    };
    let name = format!("crash/{}/{}{variant}", kind.name(), backend.name());
    let mut rng = fastrand::Rng::with_seed(seed(&name));
    let started = Instant::now();

    let jobs = jobs(&scene, &mut rng);
    let count = jobs.len() as u64;
    for batch in jobs.chunks(1_000) {
        scene
            .backend()
            .enqueue_many(batch.to_vec())
            .expect("enqueueing a batch");
    }

    let mut args = consumer.args();
    args.extend(LEASE.iter().map(|&arg| arg.to_owned()));
    let mut moments: Vec<u64> = (0..KILLS)
        .map(|_| rng.u64(count / 20..count * 9 / 10))
        .collect();
    moments.sort_unstable();
    let mut pid = scene.start("c", &args);
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
        pid = scene.start("c", &args);
    }

    scene.wait_drained(count, Duration::from_secs(300));
    scene.stop("c");
    let summary = scene.summary(0..count);
    println!("{name}: took {:?}", started.elapsed());
    summary.check(&name, KILLS * consumer.leases(kind));
    assert_eq!(summary.dead, 0, "{name}: no job may end dead: {summary}");
    assert_eq!(summary.done, count, "{name}: every job ran: {summary}");
    let killed_attempts = scene.log("c").matches("expired leases returned").count();
    assert!(
        killed_attempts > 0,
        "{name}: a restarted consumer's manager returned the killed consumer's leases"
    );
}
