//! Graceful shutdown under load: 2 consumers (`run`, 500 threads each) hold
//! 1,000 slow jobs (200–1000 ms each) in flight, 1,000 more wait in the
//! queue; both get SIGTERM at once. Proves that:
//!
//! - each consumer exits, successfully, within its grace period (10 s),
//!   measured from the signal to the process's exit;
//! - the jobs in flight finished before the exit: nothing is left
//!   `running`, and at least the 1,000 jobs in flight are done;
//! - nothing is lost: every job is either done or still pending, and a
//!   later consumer runs the pending ones; no job ran twice.
//!
//! And when the grace period (1 s) ends with 300 jobs still running (0.2 to
//! 3 s each, so that some finish around the exit), the consumer releases
//! them, still exits 0, and nothing is lost; a released job whose command
//! still ran to its end may run again, no other.
//!
//! Both run with sync commands, on the consumers' threads, and with async
//! ones, on each consumer's runtime with `--concurrency` as high as the
//! threads were (and its one thread idle): there the grace period's end
//! drops the futures still pending.
//!
//! The jobs' durations come from a printed seed; replay one with
//! `OUTBAND_RELIABILITY_SEED=<seed>`.
//!
//! Run it alone, on every backend (servers as in `.env.sample`):
//!
//! ```sh
//! OUTBAND_REQUIRE_SERVERS=1 cargo test -p outband-reliability --features servers --test shutdown -- --nocapture
//! ```
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use outband_reliability::scenario::{Backend, Consumer, Kind, Scene, seed};
use outband_testkit::{kill, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_outband-reliability-consumer");

const IN_FLIGHT: u64 = 1_000;
const JOBS: u64 = 2 * IN_FLIGHT;
const CONSUMERS: [&str; 2] = ["a", "b"];
const GRACE: Duration = Duration::from_secs(10);

macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* $(,)?) => {
        $(#[test] fn $backend() { shutdown(Backend::$variant, Kind::Sync) })*
        mod grace_over {
            use super::{Backend, Kind, grace_over};
            $(#[test] fn $backend() { grace_over(Backend::$variant, Kind::Sync) })*
        }
        mod async_commands {
            use super::{Backend, Kind, shutdown};
            $(#[test] fn $backend() { shutdown(Backend::$variant, Kind::Async) })*
            mod grace_over {
                use super::super::{Backend, Kind, grace_over};
                $(#[test] fn $backend() { grace_over(Backend::$variant, Kind::Async) })*
            }
        }
    };
}

on_every_backend!(sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis);

/// The options of a consumer that runs `jobs` jobs of `kind` at once and
/// stops within `grace`.
fn consumer_args(kind: Kind, jobs: u64, grace: &str) -> Vec<String> {
    let mut args = Consumer::running(kind, jobs).args();
    args.extend(["--grace-period".to_owned(), grace.to_owned()]);
    args
}

/// Asserts that `consumer` exited with status 0 (`exited` from
/// `Scene::wait_child`); returns its log.
fn exited_successfully(
    scene: &Scene,
    name: &str,
    consumer: &str,
    exited: Option<ExitStatus>,
) -> String {
    let log = scene.log(consumer);
    assert!(
        exited.is_some_and(|status| status.success()),
        "{name}: consumer {consumer} exits successfully, not {exited:?}; \
         its stderr is above, the end of its log:\n{}",
        tail(&log, 30)
    );
    log
}

/// The lines of a consumer's log that tell how it stopped.
fn stopping_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("stop signal") || l.contains("grace") || l.contains("stopped"))
        .collect()
}

/// The last `lines` lines of `log`.
fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn shutdown(backend: Backend, kind: Kind) {
    let Some(mut scene) = Scene::new(backend, kind, BIN) else {
        return;
    };
    let name = format!("shutdown/{}/{}", kind.name(), backend.name());
    let mut rng = fastrand::Rng::with_seed(seed(&name));
    let jobs: Vec<_> = (0..JOBS)
        .map(|job| scene.slow_record_job(job, rng.u64(200..=1000)))
        .collect();
    for batch in jobs.chunks(500) {
        scene
            .backend()
            .enqueue_many(batch.to_vec())
            .expect("enqueueing a batch");
    }

    let consumer = consumer_args(kind, IN_FLIGHT / 2, "10s");
    let pids: Vec<u32> = CONSUMERS
        .iter()
        .map(|c| scene.spawn_run(c, &consumer))
        .collect();
    wait_until(
        &format!("{IN_FLIGHT} jobs are in flight"),
        Duration::from_secs(120),
        || scene.stats().running >= IN_FLIGHT,
    );
    let at_signal = scene.stats();
    let signalled = Instant::now();
    for &pid in &pids {
        kill("-TERM", pid);
    }
    for (consumer, &pid) in CONSUMERS.iter().zip(&pids) {
        let exited = scene.wait_child(pid, GRACE + Duration::from_secs(30));
        let took = signalled.elapsed();
        println!("{name}: consumer {consumer} exited {took:?} after SIGTERM");
        let log = exited_successfully(&scene, &name, consumer, exited);
        let stopping = stopping_lines(&log);
        assert!(
            took < GRACE,
            "{name}: consumer {consumer} took {took:?}, over its grace period {GRACE:?}: {stopping:#?}"
        );
        assert!(
            log.contains("stop signal"),
            "{name}: {consumer} saw the signal"
        );
        assert!(
            log.contains("outband consumer stopped: 0 running jobs released"),
            "{name}: {consumer}'s jobs in flight finished within the grace period: {stopping:#?}"
        );
    }

    let after = scene.stats();
    println!("{name}: at SIGTERM {at_signal:?}, after the exits {after:?}");
    assert_eq!(after.running, 0, "{name}: no job left leased");
    assert!(
        after.done >= at_signal.done + at_signal.running,
        "{name}: every job in flight at the signal finished"
    );
    assert_eq!(
        after.pending + after.done,
        JOBS,
        "{name}: every job done or still pending"
    );

    drain_and_check(&mut scene, &name, JOBS, 0);
}

/// A later consumer runs what is still pending; then every one of `jobs`
/// ran, and at most `max_duplicates` of them more than once.
fn drain_and_check(scene: &mut Scene, name: &str, jobs: u64, max_duplicates: u64) {
    let later = Consumer::running(scene.commands(), 300);
    scene.start("later", &later.args());
    scene.wait_drained(jobs, Duration::from_secs(120));
    scene.stop("later");
    let summary = scene.summary(0..jobs);
    summary.check(name, max_duplicates);
    assert_eq!(summary.done, jobs, "{name}: every job ran: {summary}");
}

const GRACE_OVER_JOBS: u64 = 300;

fn grace_over(backend: Backend, kind: Kind) {
    let Some(mut scene) = Scene::new(backend, kind, BIN) else {
        return;
    };
    let name = format!("shutdown/grace-over/{}/{}", kind.name(), backend.name());
    let mut rng = fastrand::Rng::with_seed(seed(&name));
    let jobs: Vec<_> = (0..GRACE_OVER_JOBS)
        .map(|job| scene.slow_record_job(job, rng.u64(200..=3000)))
        .collect();
    scene
        .backend()
        .enqueue_many(jobs)
        .expect("enqueueing the jobs");
    let consumer = Consumer::running(kind, GRACE_OVER_JOBS);
    let pid = scene.spawn_run("a", &consumer_args(kind, GRACE_OVER_JOBS, "1s"));
    wait_until(
        &format!("{GRACE_OVER_JOBS} jobs are in flight"),
        Duration::from_secs(120),
        || scene.stats().running >= GRACE_OVER_JOBS,
    );
    kill("-TERM", pid);
    let exited = scene.wait_child(pid, Duration::from_secs(60));
    let log = exited_successfully(&scene, &name, "a", exited);
    assert!(
        log.contains("grace period over"),
        "{name}: the grace period ended: {:#?}",
        stopping_lines(&log)
    );
    let released: u64 = log
        .lines()
        .find_map(|l| l.split("outband consumer stopped: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no stop line: {}", tail(&log, 30)));
    assert!(
        released > 0,
        "{name}: jobs still ran at the end of the grace period"
    );
    assert!(
        released <= consumer.leases(kind),
        "{name}: {released} released, more than the {} leases a consumer holds",
        consumer.leases(kind)
    );

    let after = scene.stats();
    println!("{name}: {released} released; after the exit {after:?}");
    assert_eq!(after.running, 0, "{name}: no job left leased");
    assert_eq!(
        after.pending + after.done,
        GRACE_OVER_JOBS,
        "{name}: every job done or back in the queue"
    );

    // a released job whose command went on to its end ran once more later
    drain_and_check(&mut scene, &name, GRACE_OVER_JOBS, released);
}
