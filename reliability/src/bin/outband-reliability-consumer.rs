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
