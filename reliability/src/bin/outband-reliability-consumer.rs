//! The consumer of the reliability scenarios: the outband daemon with
//! commands that record each of their runs in the sink named by
//! `OUTBAND_RELIABILITY_SINK` (see `outband_reliability::sink`).
//!
//! Run with: OUTBAND_RELIABILITY_SINK='sqlite://rel.db#runs' cargo run -p outband-reliability --bin outband-reliability-consumer -- run --url sqlite://rel.db

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use outband::queue_command;
use outband_reliability::sink::Sink;

/// The sink of this process, opened on the first run.
fn sink() -> Result<&'static Sink, String> {
    static SINK: OnceLock<Sink> = OnceLock::new();
    if let Some(sink) = SINK.get() {
        return Ok(sink);
    }
    let sink = Sink::from_env().map_err(|e| e.to_string())?;
    Ok(SINK.get_or_init(|| sink))
}

// The scenarios enqueue these by the names in `outband_reliability::scenario`
// (`Kind::Sync` on `QUEUE`, `Kind::Async` on `ASYNC_QUEUE`). The async
// commands have a queue of their own: a consumer that serves an async
// command holds `concurrency` leases more, which would change the bound of
// the scenarios that run only sync commands.

/// Records one run of job `job`.
#[queue_command(name = "reliability::record", queue = "reliability", retries = 10)]
fn record(job: u64) -> Result<(), String> {
    sink()?.record(job).map_err(|e| e.to_string())
}

/// Sleeps `millis`, then records one run of job `job`.
#[queue_command(name = "reliability::slow_record", queue = "reliability", retries = 10)]
fn slow_record(job: u64, millis: u64) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(millis));
    record::call(job)
}

/// Sleeps `millis` between two readings of the clock, appends them to
/// `limited.log` in the working directory (one `start end` line in
/// nanoseconds, written with one append), then records one run of job
/// `job`. At most 3 run at once, across every consumer.
#[queue_command(
    name = "reliability::limited",
    queue = "reliability",
    retries = 10,
    concurrency = 3
)]
fn limited(job: u64, millis: u64) -> Result<(), String> {
    let start = nanos();
    std::thread::sleep(Duration::from_millis(millis));
    append_line("limited.log", &format!("{start} {}", nanos()))?;
    record::call(job)
}

/// Appends the time it started to `rated.log` in the working directory (one
/// line, nanoseconds, written with one append), then records one run of job
/// `job`. At most 50 start per second, across every consumer.
#[queue_command(
    name = "reliability::rated",
    queue = "reliability",
    retries = 10,
    rate = "50/s"
)]
fn rated(job: u64) -> Result<(), String> {
    append_line("rated.log", &nanos().to_string())?;
    record::call(job)
}

/// Nanoseconds since the Unix epoch.
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

/// Appends `line` to file `name` of the working directory, in one write.
fn append_line(name: &str, line: &str) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(name)
        .and_then(|mut log| log.write_all(format!("{line}\n").as_bytes()))
        .map_err(|e| e.to_string())
}

/// Records one run of job `job`, as an async command: the sink's write
/// blocks, so it goes to the runtime's blocking pool rather than stall the
/// task's worker thread.
#[queue_command(
    name = "reliability::async_record",
    queue = "reliability_async",
    retries = 10
)]
async fn async_record(job: u64) -> Result<(), String> {
    tokio::task::spawn_blocking(move || record::call(job))
        .await
        .map_err(|e| e.to_string())?
}

/// Sleeps `millis` without holding a thread, then records one run of job `job`.
#[queue_command(
    name = "reliability::async_slow_record",
    queue = "reliability_async",
    retries = 10
)]
async fn async_slow_record(job: u64, millis: u64) -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    async_record::call(job).await
}

fn main() -> ExitCode {
    outband_daemon::main()
}
