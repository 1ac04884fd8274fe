//! Run with: cargo bench -p outband-bench --bench memory
//!
//! The benchmark of [`outband_bench`] on `MemoryQueue`: enqueue and
//! processing throughput, and the time from enqueue to start, as a Markdown
//! table. With one thread on `MemoryQueue`, the simple processor's time per
//! no-op job is the framework's own cost per processed job; the goal is under
//! 5 µs.
//!
//! Options: `--jobs N` (default 20,000). Other arguments, such as the
//! `--bench` that `cargo bench` passes, are ignored.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use outband::MemoryQueue;
use outband_bench::{self as bench, BenchConfig};

/// The goal for the framework's cost per processed job.
const GOAL: Duration = Duration::from_micros(5);

fn main() -> ExitCode {
    let mut config = BenchConfig::default();
    match jobs_argument(std::env::args().skip(1)) {
        Ok(Some(jobs)) => config.jobs = jobs,
        Ok(None) => {}
        Err(message) => {
            eprintln!("{message}\nusage: memory [--jobs N]");
            return ExitCode::from(2);
        }
    }

    let report = match bench::run(Arc::new(MemoryQueue::new()), &config) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("MemoryQueue, {} jobs per run\n", config.jobs);
    println!("{report}");
    if let Some(cost) = report.framework_cost() {
        let micros = cost.as_secs_f64() * 1e6;
        let goal = GOAL.as_secs_f64() * 1e6;
        let verdict = if cost <= GOAL { "within" } else { "over" };
        println!(
            "framework cost per processed job (simple processor, one thread): \
             {micros:.2} µs, {verdict} the goal of {goal} µs"
        );
    }
    ExitCode::SUCCESS
}

/// The value of `--jobs N` or `--jobs=N`, if given.
fn jobs_argument(mut args: impl Iterator<Item = String>) -> Result<Option<usize>, String> {
    let mut jobs = None;
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--jobs") {
            Some("") => args.next().ok_or("--jobs needs a number")?,
            Some(rest) if rest.starts_with('=') => rest[1..].to_owned(),
            _ => continue,
        };
        match value.parse::<usize>() {
            Ok(n) if n > 0 => jobs = Some(n),
            _ => return Err(format!("--jobs needs a positive number, not `{value}`")),
        }
    }
    Ok(jobs)
}
