//! A consumer with a few real commands, for the daemon's integration tests
//! and for trying the CLI by hand.
//!
//! Run with: cargo run -p outband-daemon --bin outband-demo-consumer -- run --url sqlite://demo.db

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use outband::{periodic_command, queue_command};

/// Appends `tag` and a newline to the file at `path`.
#[queue_command(name = "demo::record", queue = "demo")]
fn record(path: String, tag: String) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    // one write of a short line: appends from several processes do not interleave
    file.write_all(format!("{tag}\n").as_bytes())
        .map_err(|e| format!("{path}: {e}"))
}

/// Sleeps, then records `tag`.
#[queue_command(name = "demo::sleep_then_record", queue = "demo")]
fn sleep_then_record(path: String, tag: String, millis: u64) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(millis));
    record::call(path, tag)
}

/// Every second, records that it ran into the file named by
/// `OUTBAND_DEMO_TICKS`, if set.
#[periodic_command(cron = "* * * * * *", name = "demo::tick", queue = "demo")]
fn tick() -> Result<(), String> {
    match std::env::var("OUTBAND_DEMO_TICKS") {
        Ok(path) => record::call(path, format!("tick {}", std::process::id())),
        Err(_) => Ok(()),
    }
}

fn main() -> ExitCode {
    outband_daemon::main!()
}
