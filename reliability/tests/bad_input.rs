//! **Bad input**: 10,000 malformed records are written straight into the
//! backend, past the enqueue API, mixed with good jobs, while a consumer runs.
//!
//! The records are of five kinds, 2,000 each (`outband_reliability::malformed`):
//! random bytes as arguments, unknown command names, truncated records
//! (arguments cut mid-value, or fields missing), arguments over the payload
//! limit (lowered to 4 KiB for the test, so the records stay small), and
//! arguments of the wrong types. They are written in ten rounds of 1,000,
//! each followed by 50 good jobs enqueued the ordinary way. On the SQL
//! databases each round also writes one row of a good job whose state code
//! outband does not know (4, 9, -1, …), as a broken migration or a manual fix
//! might: no claim finds it, and the manager's recovery step moves it to
//! `dead`.
//!
//! What it proves, on SQLite, PostgreSQL, MariaDB and Redis: every good job is
//! done; every bad one ends `dead` with a reason a human can read, checked per
//! kind (`undecodable arguments: …`, `unknown command …`, `malformed record:
//! …`, `… over the limit …`, `malformed record: state code 9 is not one
//! outband knows …`); the stats count every bad record as `dead`; the
//! consumer never exits (it is still processing at the end, and a good job
//! enqueued after all the bad ones is done too). It prints the summary line
//! and a sample reason of each kind.
//!
//! The consumer is a `MultiProcessor` in this process, so that the runs of the
//! good command can be counted; a thread of the test runs the manager's
//! recovery step, as the daemon's manager does every half lease.
//!
//! Run it alone: `cargo test -p outband-reliability --features servers --test bad_input`
//! (add `-- --nocapture` to see the summary lines).
// The backends need the database client libraries: `--features servers`
// (or the workspace's `--all-features`, as CI runs it).
#![cfg(feature = "servers")]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use outband::{
    BaseQueue, JobId, JobState, MultiProcessor, ProcessorConfig, RetryPolicy, codec, queue_command,
};
use outband_reliability::malformed::{self, BadRecord, Kind};
use outband_reliability::servers::{self, Backend, Store};
use outband_reliability::{RunCounts, Summary};
use outband_testkit::wait_until;

const QUEUE: &str = "bad_input";
const BAD: usize = 10_000;
const ROUNDS: usize = 10;
const GOOD_PER_ROUND: u64 = 50;
/// The payload limit in force in this test process.
const LIMIT: usize = 4096;
/// The state code of the row of a good job, one per round, that the SQL
/// databases get: none is one outband knows.
const UNKNOWN_STATES: [i32; ROUNDS] = [5, 6, 9, 42, 255, 1000, -1, -9, i32::MIN, i32::MAX];

/// Runs of each good job, by its number (numbers of different backends differ).
static RUNS: RunCounts = RunCounts::new();

/// The good command: counts its run.
#[queue_command(name = "reliability::bad_input::good", queue = "bad_input")]
fn good(n: u64, label: String) {
    assert!(!label.is_empty());
    RUNS.record(n);
}

fn good_args(n: u64) -> Vec<u8> {
    codec::encode(&(n, format!("good job {n}"))).expect("encodes")
}

fn scenario(kind: Backend) {
    let Some(test_queue) = servers::open(kind) else {
        return;
    };
    codec::set_max_payload(LIMIT);
    let backend: Arc<dyn BaseQueue> = test_queue.backend.clone();
    let config = ProcessorConfig::default()
        .queues([QUEUE])
        .wait_time(Duration::from_millis(20))
        .lease(Duration::from_secs(30))
        .max_threads(8)
        .retry(RetryPolicy::immediate());
    let consumer = MultiProcessor::new(backend.clone(), config).expect("a processor");
    consumer.start();

    let base = kind.index() * 1_000_000;
    let bad = malformed::generate::<(u64, String)>(
        BAD,
        good::NAME,
        good_args,
        LIMIT,
        0x0B0A_D000 + kind.index(),
    );
    let sql = matches!(test_queue.store, Store::Sql { .. });
    let unknown_states: Vec<BadRecord> = UNKNOWN_STATES
        .iter()
        .zip(0..)
        .filter(|_| sql)
        .map(|(&code, i)| {
            let n = base + 900_000 + i;
            malformed::unknown_state(good::NAME, good_args(n), code)
        })
        .collect();

    // the manager: takes expired leases back and sends rows of unknown
    // states to `dead`, as the daemon's manager thread does
    let stop_manager = Arc::new(AtomicBool::new(false));
    let manager = {
        let (backend, stop) = (backend.clone(), stop_manager.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Err(error) = backend.recover_expired() {
                    eprintln!("recover_expired: {error}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let mut bad_ids: Vec<(JobId, &BadRecord)> = Vec::with_capacity(BAD + ROUNDS);
    let mut good_ids: Vec<(JobId, u64)> = Vec::new();
    for (round, records) in bad.chunks(BAD / ROUNDS).enumerate() {
        let ids = malformed::write(&test_queue.store, QUEUE, records).expect("written");
        bad_ids.extend(ids.into_iter().zip(records));
        let unknown = unknown_states.get(round..=round).unwrap_or_default();
        let ids = malformed::write(&test_queue.store, QUEUE, unknown).expect("written");
        bad_ids.extend(ids.into_iter().zip(unknown));
        for i in 0..GOOD_PER_ROUND {
            let n = base + round as u64 * GOOD_PER_ROUND + i;
            let id = good::enqueue_on(&*backend, n, format!("good job {n}")).expect("enqueued");
            good_ids.push((id, n));
        }
    }

    // every job reaches its end while the consumer keeps running; in SQL,
    // where each job is one row in one state, every one of them is counted
    let written = (bad_ids.len() + good_ids.len()) as u64;
    wait_until("every job ending", Duration::from_secs(240), || {
        assert!(consumer.is_processing(), "the consumer stopped");
        let stats = backend.stats(QUEUE).expect("stats");
        if sql {
            let counted = stats.pending + stats.running + stats.done + stats.dead + stats.cancelled;
            assert_eq!(counted, written, "every job counted once: {stats:?}");
        }
        stats.pending == 0 && stats.running == 0
    });
    assert!(consumer.is_processing(), "the consumer stopped");
    let last = base + 999_999;
    let last_id = good::enqueue_on(&*backend, last, "after the bad ones".into()).expect("enqueued");
    good_ids.push((last_id, last));
    wait_until("the last good job", Duration::from_secs(60), || {
        backend
            .job(last_id)
            .expect("job")
            .is_some_and(|j| j.state == JobState::Done)
    });
    // the rows of unknown states are counted as dead all along, and the
    // manager's step makes them dead letters with their reasons
    wait_until(
        "the rows of unknown states reaching dead",
        Duration::from_secs(30),
        || {
            bad_ids
                .iter()
                .filter(|(_, record)| record.kind == Kind::UnknownState)
                .all(|(id, _)| {
                    let job = backend.job(*id).expect("job").expect("kept");
                    assert_eq!(job.state, JobState::Dead, "counted as dead");
                    job.last_error.is_some()
                })
        },
    );
    stop_manager.store(true, Ordering::SeqCst);
    manager.join().expect("the manager thread");
    consumer.stop();

    // the dead letters, with their reasons
    let mut dead: HashMap<JobId, String> = HashMap::new();
    loop {
        let page = backend
            .dead_jobs(QUEUE, dead.len(), 1000)
            .expect("dead jobs");
        if page.is_empty() {
            break;
        }
        for job in page {
            dead.insert(job.id, job.last_error.unwrap_or_default());
        }
    }
    let mut samples: HashMap<Kind, String> = HashMap::new();
    let mut lost = 0;
    for (id, record) in &bad_ids {
        let Some(reason) = dead.get(id) else {
            let job = backend.job(*id).expect("job");
            eprintln!(
                "bad record {id} ({}) did not end dead: {job:?}",
                record.kind.name()
            );
            lost += 1;
            continue;
        };
        assert!(
            reason.contains(record.expected_reason()),
            "{}: bad record {id} ({}) is dead with `{reason}`, not `{}`",
            kind.name(),
            record.kind.name(),
            record.expected_reason()
        );
        samples.entry(record.kind).or_insert_with(|| reason.clone());
    }
    let mut done = 0;
    let mut duplicates = 0;
    for &(id, n) in &good_ids {
        let job = backend.job(id).expect("job");
        match job.map(|j| j.state) {
            Some(JobState::Done) if RUNS.runs_of(n) > 0 => {
                done += 1;
                duplicates += u64::from(RUNS.runs_of(n) - 1);
            }
            other => {
                eprintln!(
                    "good job {id} ({n}) ended {other:?} after {} runs",
                    RUNS.runs_of(n)
                );
                lost += 1;
            }
        }
    }
    let kinds = Kind::ALL
        .into_iter()
        .chain(sql.then_some(Kind::UnknownState));
    for kind in kinds {
        let sample = samples.get(&kind).map_or("(none)", String::as_str);
        let sample: String = sample.chars().take(160).collect();
        println!("bad_input/{}: {}: {sample}", kind.name(), kind.name());
    }
    let summary = Summary {
        jobs: (bad_ids.len() + good_ids.len()) as u64,
        done,
        lost,
        duplicates,
        dead: dead.len() as u64,
    };
    summary.check(&format!("bad_input/{}", kind.name()), 0);
    assert_eq!(
        summary.dead,
        bad_ids.len() as u64,
        "only the bad records are dead"
    );
    assert_eq!(
        backend.stats(QUEUE).expect("stats").dead,
        summary.dead,
        "the stats count every dead letter"
    );
    assert_eq!(
        summary.done,
        good_ids.len() as u64,
        "every good job is done"
    );
}

#[test]
fn bad_input_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn bad_input_postgres() {
    scenario(Backend::Postgres);
}

#[test]
fn bad_input_mariadb() {
    scenario(Backend::Mysql);
}

#[test]
fn bad_input_redis() {
    scenario(Backend::Redis);
}
