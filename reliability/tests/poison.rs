//! **Poison jobs**: a command that always panics, and one that hangs past its
//! lease without a heartbeat (a stuck thread). Each ends as the contract
//! says, and neither blocks the other jobs.
//!
//! - `always_panics` (2 retries, so 3 attempts) shares its queue and the
//!   consumer's threads with 200 good jobs. Every attempt panics; the panic
//!   is caught, the attempt is retried, and after the third the job is `dead`
//!   with `panicked: <message>` as its reason. The consumer's threads live
//!   on: every good job is done.
//! - `stuck` (1 retry, so 2 attempts) hangs until the test lets it go. It
//!   runs on workers that never heartbeat: each calls the processor's single
//!   steps (`claim_next_job`, then `process`) with a 1 s lease, the way a
//!   worker whose whole process froze would hold a job. (A processor's own
//!   loop heartbeats every job it runs, so a hung thread inside a live
//!   processor keeps its lease; outband has no per-job timeout.) The
//!   manager's step (`recover_expired`) takes the lease back: the job returns
//!   to `pending`, a second worker claims it and hangs too, and once that
//!   lease expires the job is `dead` with `lease expired …` as its reason.
//!   When the hung workers are let go, their late outcomes are discarded
//!   (`LeaseLost`): the fencing token holds.
//!
//! The good jobs must all be done while both stuck workers still hang. The
//! scenario runs on SQLite, PostgreSQL, MariaDB and Redis, and prints its
//! summary line.
//!
//! Run it alone: `cargo test -p outband-reliability --features servers --test poison`
//! (add `-- --nocapture` to see the summary lines).
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use outband::{
    BaseQueue, JobId, JobState, MultiProcessor, Processed, ProcessorConfig, RetryPolicy,
    SimpleProcessor, queue_command,
};
use outband_reliability::servers::{self, Backend};
use outband_reliability::{RunCounts, Summary};
use outband_testkit::wait_until;

const WORK: &str = "poison";
const STUCK: &str = "poison_stuck";
const GOOD: u64 = 200;
const PANICKING: u64 = 10;
/// The lease of the workers that hang.
const STUCK_LEASE: Duration = Duration::from_secs(1);

/// Runs of each job, by its number (numbers of different backends differ).
static RUNS: RunCounts = RunCounts::new();

/// The longest wait for a step of the scenario; it only guards against a hang.
const WAIT: Duration = Duration::from_secs(120);

/// The numbers of the stuck jobs let go, and how many runs hang now.
struct Gate {
    released: Option<HashSet<u64>>,
    hanging: Option<HashMap<u64, usize>>,
}

static GATE: (Mutex<Gate>, Condvar) = (
    Mutex::new(Gate {
        released: None,
        hanging: None,
    }),
    Condvar::new(),
);

/// A good job.
#[queue_command(name = "reliability::poison::work", queue = "poison")]
fn work(n: u64) {
    RUNS.record(n);
}

/// Panics on every attempt.
#[queue_command(
    name = "reliability::poison::always_panics",
    queue = "poison",
    retries = 2
)]
fn always_panics(n: u64) {
    RUNS.record(n);
    panic!("always panics on job {n}");
}

/// Hangs until the test lets job `n` go (or a minute passes).
#[queue_command(
    name = "reliability::poison::stuck",
    queue = "poison_stuck",
    retries = 1
)]
fn stuck(n: u64) {
    RUNS.record(n);
    let (lock, condvar) = &GATE;
    let mut gate = lock.lock().unwrap();
    *gate
        .hanging
        .get_or_insert_with(HashMap::new)
        .entry(n)
        .or_default() += 1;
    let give_up = Instant::now() + Duration::from_secs(60);
    while !gate
        .released
        .as_ref()
        .is_some_and(|released| released.contains(&n))
    {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        gate = condvar.wait_timeout(gate, left).unwrap().0;
    }
    *gate
        .hanging
        .get_or_insert_with(HashMap::new)
        .entry(n)
        .or_default() -= 1;
}

/// How many runs of stuck job `n` hang now.
fn hanging(n: u64) -> usize {
    let gate = GATE.0.lock().unwrap();
    gate.hanging
        .as_ref()
        .and_then(|h| h.get(&n).copied())
        .unwrap_or(0)
}

fn release(n: u64) {
    let (lock, condvar) = &GATE;
    lock.lock()
        .unwrap()
        .released
        .get_or_insert_with(HashSet::new)
        .insert(n);
    condvar.notify_all();
}

fn state_of(backend: &dyn BaseQueue, id: JobId) -> Option<JobState> {
    backend.job(id).expect("job").map(|job| job.state)
}

/// Keeps the expected panics of `always_panics` out of the output; every
/// other panic is reported as usual.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<String>();
            if !message.is_some_and(|m| m.starts_with("always panics on job")) {
                default(info);
            }
        }));
    });
}

fn scenario(kind: Backend) {
    quiet_expected_panics();
    let Some(test_queue) = servers::open(kind) else {
        return;
    };
    let backend: Arc<dyn BaseQueue> = test_queue.backend.clone();
    let base = 10_000 + kind.index() * 1_000;

    // panicking jobs spread among the good ones, in one queue
    let mut good_ids = Vec::new();
    let mut panic_ids = Vec::new();
    for i in 0..GOOD {
        if i % (GOOD / PANICKING) == 0 {
            let n = base + 500 + i;
            panic_ids.push((
                always_panics::enqueue_on(&*backend, n).expect("enqueued"),
                n,
            ));
        }
        good_ids.push((
            work::enqueue_on(&*backend, base + i).expect("enqueued"),
            base + i,
        ));
    }
    // the manager: takes expired leases back, as the daemon's manager thread does
    let stop = Arc::new(AtomicBool::new(false));
    let manager = {
        let (backend, stop) = (backend.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Err(error) = backend.recover_expired() {
                    eprintln!("recover_expired: {error}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let stuck_n = base + 999;
    let stuck_id = stuck::enqueue_on(&*backend, stuck_n).expect("enqueued");

    // two workers that never heartbeat take the stuck job in turn
    let stalled = ProcessorConfig::default()
        .queues([STUCK])
        .lease(STUCK_LEASE)
        .retry(RetryPolicy::immediate());
    let mut hung = Vec::new();
    for _ in 0..2 {
        let worker = SimpleProcessor::new(backend.clone(), stalled.clone()).expect("a worker");
        let runs_before = RUNS.runs_of(stuck_n);
        hung.push(std::thread::spawn(move || {
            let claimed = loop {
                if let Some(claimed) = worker.claim_next_job().expect("claim") {
                    break claimed;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            worker.process(claimed).expect("process")
        }));
        wait_until("the stuck job hanging", WAIT, || {
            RUNS.runs_of(stuck_n) > runs_before
        });
    }
    // (the second worker could claim only after the manager took the first
    // worker's lease back)

    let config = ProcessorConfig::default()
        .queues([WORK])
        .wait_time(Duration::from_millis(20))
        .lease(Duration::from_secs(2))
        .max_threads(4)
        .retry(RetryPolicy::immediate());
    let consumer = MultiProcessor::new(backend.clone(), config).expect("a processor");
    consumer.start();

    let all_good_done = || {
        good_ids
            .iter()
            .all(|&(id, _)| state_of(&*backend, id) == Some(JobState::Done))
    };
    wait_until("every good job done", WAIT, all_good_done);
    assert!(
        hanging(stuck_n) == 2 && state_of(&*backend, stuck_id) != Some(JobState::Done),
        "the good jobs were done while both runs of the stuck job hung"
    );
    wait_until("every panicking job dead", WAIT, || {
        panic_ids
            .iter()
            .all(|&(id, _)| state_of(&*backend, id) == Some(JobState::Dead))
    });
    wait_until("the stuck job dead", WAIT, || {
        state_of(&*backend, stuck_id) == Some(JobState::Dead)
    });
    consumer.stop();
    stop.store(true, Ordering::SeqCst);
    manager.join().expect("the manager returns");

    // the hung workers come back: their outcomes are discarded
    release(stuck_n);
    for worker in hung {
        let processed = worker.join().expect("the worker returns");
        assert_eq!(
            processed,
            Processed::LeaseLost,
            "{}: a late outcome",
            kind.name()
        );
    }

    let mut summary = Summary {
        jobs: (good_ids.len() + panic_ids.len() + 1) as u64,
        ..Summary::default()
    };
    for &(id, n) in &good_ids {
        let job = backend.job(id).expect("job");
        if job.is_some_and(|j| j.state == JobState::Done) && RUNS.runs_of(n) > 0 {
            summary.done += 1;
            summary.duplicates += u64::from(RUNS.runs_of(n) - 1);
        } else {
            summary.lost += 1;
        }
    }
    for &(id, n) in &panic_ids {
        let job = backend.job(id).expect("job").expect("kept");
        let reason = job.last_error.clone().unwrap_or_default();
        assert_eq!(job.state, JobState::Dead);
        assert_eq!(reason, format!("panicked: always panics on job {n}"));
        assert_eq!(
            (job.attempt, RUNS.runs_of(n)),
            (3, 3),
            "every attempt ran once"
        );
        summary.dead += 1;
    }
    let job = backend.job(stuck_id).expect("job").expect("kept");
    let reason = job.last_error.clone().unwrap_or_default();
    assert_eq!(
        job.state,
        JobState::Dead,
        "the late outcomes changed nothing"
    );
    assert!(reason.contains("lease expired"), "{reason}");
    assert_eq!((job.attempt, RUNS.runs_of(stuck_n)), (2, 2));
    summary.dead += 1;
    println!(
        "poison/{}: panicking job: {}; stuck job: {reason}",
        kind.name(),
        format_args!("panicked: always panics on job {}", panic_ids[0].1)
    );
    summary.check(&format!("poison/{}", kind.name()), 0);
}

#[test]
fn poison_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn poison_postgres() {
    scenario(Backend::Postgres);
}

#[test]
fn poison_mariadb() {
    scenario(Backend::Mysql);
}

#[test]
fn poison_redis() {
    scenario(Backend::Redis);
}
