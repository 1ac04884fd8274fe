//! Run with: cargo bench -p outband-diesel --features sqlite,mysql --bench wake
//!
//! How long a job enqueued by another process waits before an idle consumer
//! starts it, on SQLite (a file) and MariaDB/MySQL (`MYSQL_DATABASE_URL`):
//! the p50 and p99 from enqueue to start. The consumer is a
//! `MultiProcessor` with `ProcessorConfig::default()` (a `wait_time` of
//! 1 s) in this process; the producer is this benchmark again, run as a
//! process of its own with `--producer`. It enqueues one job at a time,
//! each stamped with the wall clock just before its enqueue, at random
//! intervals of 20 to 80 ms, so that the consumer is idle each time and the
//! figure is the wake-up path; the job reads the clock when it starts.
//!
//! Options: `--jobs N` (default 200 per database), `--db sqlite|mysql`
//! (repeatable; default both). Each database works in tables of its own,
//! dropped at the end. Other arguments, such as cargo's `--bench`, are
//! ignored.

use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outband::__private::{Run as RunKind, RunError, decode_args, output_value};
use outband::{
    BaseQueue, Command, DEFAULT_MAX_ATTEMPTS, Error, MultiProcessor, NewJob, Processor,
    ProcessorConfig, Registry, codec,
};
use outband_diesel::DatabaseQueue;

/// The queue and the command of the benchmark's jobs.
const QUEUE: &str = "wake-bench";
const STARTED: &str = "outband::bench::wake_started";

static COMMAND: Command = Command {
    name: STARTED,
    queue: QUEUE,
    max_attempts: DEFAULT_MAX_ATTEMPTS,
    priority: 0,
    key: None,
    unique: None,
    concurrency: None,
    rate: None,
    backoff: outband::Backoff::Consumer,
    timeout: None,
    show_args: outband::__private::show_no_args,
    show_result: outband::__private::show_no_result,
    file: file!(),
    line: line!(),
    run: RunKind::Sync(started),
};

/// The time each job waited between its stamp and its start, in
/// nanoseconds; waiters are told when one is added.
static WAITED: (Mutex<Vec<u64>>, Condvar) = (Mutex::new(Vec::new()), Condvar::new());

fn started(args: &[u8], _: &outband::JobContext) -> Result<Option<Vec<u8>>, RunError> {
    let (stamp,) = decode_args::<(u64,)>(args)?;
    let waited = now_ns().saturating_sub(stamp);
    WAITED
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(waited);
    WAITED.1.notify_all();
    output_value(())
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::from_commands([&COMMAND]).expect("one command"))
}

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// The producer process: enqueues `jobs` jobs on `url`, one at a time.
fn produce(url: &str, jobs: usize) -> Result<(), Error> {
    let backend = DatabaseQueue::open(url)?;
    let mut seed = now_ns() | 1;
    for _ in 0..jobs {
        // xorshift: intervals that fall on every phase of a poll
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 61));
        let job = NewJob::new(STARTED, codec::encode(&(now_ns(),))?).queue(QUEUE);
        backend.enqueue(job)?;
    }
    Ok(())
}

/// Runs the consumer on `backend` and the producer on `url` (the same
/// tables), and returns the sorted waits.
fn measure(backend: &DatabaseQueue, url: &str, jobs: usize) -> Result<Vec<Duration>, Error> {
    let backend: Arc<dyn BaseQueue> = Arc::new(backend.clone());
    let processor: Processor = MultiProcessor::with_registry(
        backend,
        ProcessorConfig::default().queues([QUEUE]),
        registry(),
    )?
    .into();
    WAITED
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    processor.start();
    // let the consumer go idle: the figure is the wake-up path
    std::thread::sleep(Duration::from_millis(500));
    let producer = std::process::Command::new(std::env::current_exe().map_err(Error::backend)?)
        .args(["--producer", url, "--jobs", &jobs.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut waited = WAITED.0.lock().unwrap_or_else(PoisonError::into_inner);
    while waited.len() < jobs && Instant::now() < deadline {
        waited = WAITED
            .1
            .wait_timeout(waited, Duration::from_millis(100))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    let mut waits: Vec<Duration> = waited.drain(..).map(Duration::from_nanos).collect();
    drop(waited);
    processor.stop();
    match producer {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(Error::backend(format!("the producer failed: {status}"))),
        Err(error) => return Err(Error::backend(error)),
    }
    if waits.len() != jobs {
        return Err(Error::backend(format!(
            "{jobs} jobs were enqueued but {} started",
            waits.len()
        )));
    }
    waits.sort_unstable();
    Ok(waits)
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn report(name: &str, waits: &[Duration]) {
    println!(
        "{name:<7} enqueue → start, another process, {} jobs: p50 {:.2} ms, p99 {:.2} ms",
        waits.len(),
        percentile(waits, 50).as_secs_f64() * 1e3,
        percentile(waits, 99).as_secs_f64() * 1e3,
    );
}

fn sqlite(jobs: usize) -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("outband-wake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(Error::backend)?;
    let url = format!("sqlite://{}", dir.join("q.db").display());
    let backend = DatabaseQueue::open(&url)?;
    let waits = measure(&backend, &url, jobs);
    drop(backend);
    std::fs::remove_dir_all(&dir).ok();
    report("sqlite", &waits?);
    Ok(())
}

fn mysql(jobs: usize) -> Result<(), Error> {
    let url = outband_testkit::mysql_url();
    let prefix = format!("{}_", outband_testkit::unique_name("wake"));
    let backend = DatabaseQueue::builder(url.as_str())
        .prefix(prefix.as_str())
        .temporary(true)
        .open()?;
    let producer_url = outband_testkit::with_param(&url, "prefix", &prefix);
    report("mysql", &measure(&backend, &producer_url, jobs)?);
    Ok(())
}

fn main() -> ExitCode {
    let mut jobs = 200;
    let mut dbs = Vec::new();
    let mut producer = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--jobs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => jobs = n,
                None => {
                    eprintln!("--jobs needs a number");
                    return ExitCode::FAILURE;
                }
            },
            "--db" => dbs.extend(args.next()),
            "--producer" => producer = args.next(),
            _ => {}
        }
    }
    if let Some(url) = producer {
        return match produce(&url, jobs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("producer: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if dbs.is_empty() {
        dbs = vec!["sqlite".to_owned(), "mysql".to_owned()];
    }
    let mut failed = false;
    for db in &dbs {
        let result = match db.as_str() {
            "sqlite" => sqlite(jobs),
            "mysql" => mysql(jobs),
            other => Err(Error::Config(format!("--db {other}: sqlite or mysql"))),
        };
        if let Err(error) = result {
            eprintln!("{db}: {error}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
