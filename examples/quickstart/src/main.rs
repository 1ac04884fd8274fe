//! Run with: cargo run -p quickstart
//!
//! The smallest outband program: it defines a command, enqueues ten calls and
//! processes them, printing what ran. With `OUTBAND_URL` unset the queue is
//! the SQLite file `outband.db` in the working directory; set it to a
//! `redis://` URL (or, built with `--features postgres`, a `postgres://`
//! one) to run it there.

use outband::{BaseQueue, ProcessorConfig, SimpleProcessor, queue_command};
use std::time::Duration;
// Linking the backends lets `outband::open` read their URLs: `sqlite://`
// (and `postgres://` with `--features postgres`), `redis://`.
use outband_diesel as _;
use outband_redis as _;

/// Greets someone: the work to run out-of-band.
#[queue_command(queue = "quickstart")]
fn greet(name: String, n: u32) -> String {
    let line = format!("hello, {name} (call {n})");
    println!("ran: {line}");
    line
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("OUTBAND_URL").unwrap_or_else(|_| "sqlite://outband.db".to_owned());
    let backend = outband::open(&url)?;
    outband::set_default_backend(backend.clone())?;

    // The producer's side: each call only enqueues, and returns a handle
    // on the job, typed by what `greet` returns.
    let jobs = (1..=10)
        .map(|n| greet("world".to_owned(), n))
        .collect::<Result<Vec<_>, _>>()?;
    println!("enqueued {} jobs on {url}", jobs.len());

    // The consumer's side, here in the same process: run what is queued.
    let consumer = SimpleProcessor::new(
        backend.clone(),
        ProcessorConfig::default().queues(["quickstart"]),
    )?;
    while consumer.process_next()? {}

    let greeting = jobs[9].wait(Duration::from_secs(5))?;
    let last = backend.job(jobs[9].id())?.ok_or("the last job is gone")?;
    println!(
        "job {} is {}, and returned {greeting:?}",
        last.id, last.state
    );
    Ok(())
}
