//! Run with: cargo bench -p outband-redis --features bench --bench listing
//!
//! What a page of [`BaseQueue::jobs`] costs on `RedisQueue` at `REDIS_URL`
//! (default `redis://127.0.0.1:6379/`), with few and with many jobs in the
//! queue, in a namespace of its own that is deleted at the end. The queue is
//! filled to `--small` jobs (default 10,000), measured, grown to `--large`
//! (default 1,000,000) and measured again; one job in 1,000 is of a second,
//! rare command, one in 100 is cancelled as it is enqueued, so the walks
//! pass records in another state, and each stage finishes a few of the
//! oldest jobs (done and dead). Each call is timed `--calls` times (default 200), in rounds that
//! take each call once: the least, the median and the 99th percentile of
//!
//! - **first page**: the newest 50 pending jobs;
//! - **deep page**: 50 pending jobs below the job in the middle of the queue;
//! - **rare command**: a page of pending jobs of the rare command, which
//!   walks the whole [`JobQuery::SCAN`] bound and comes back short;
//!
//! beside the ceiling in the same minute: a bare `PING` (the round trip) and
//! a bare `HGETALL` of one job's record. A page's cost must not grow with
//! the queue: each row should read the same at both sizes.
//!
//! Options: `--small N`, `--large N`, `--calls N`. Other arguments, such as
//! the `--bench` that `cargo bench` passes, are ignored.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use outband::{BaseQueue, JobId, JobQuery, JobState, NewJob, Outcome};
use outband_bench as bench;
use outband_redis::{RedisOptions, RedisQueue};

/// The queue every stage fills.
const QUEUE: &str = "outband-bench-listing";
/// The command of most jobs.
const COMMON: &str = "outband_redis::bench::listed";
/// The command of one job in [`RARE_EVERY`].
const RARE: &str = "outband_redis::bench::rare";
const RARE_EVERY: usize = 1000;
/// One job in this many is cancelled after its batch is stored.
const CANCELLED_EVERY: usize = 100;
/// Jobs per `enqueue_many` call.
const BATCH: usize = 1000;
/// Jobs each stage claims from the front and finishes, half done, half dead.
const FINISHED: usize = 10;

struct Options {
    small: usize,
    large: usize,
    calls: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        small: 10_000,
        large: 1_000_000,
        calls: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--small" => &mut options.small,
            "--large" => &mut options.large,
            "--calls" => &mut options.calls,
            _ => continue,
        };
        let value = args.next().ok_or(format!("{arg} needs a number"))?;
        *slot = value
            .parse()
            .map_err(|_| format!("{arg} {value}: not a number"))?;
    }
    if options.small == 0 || options.large < options.small || options.calls == 0 {
        return Err(
            "--small must be at least 1, --large at least --small, --calls at least 1".into(),
        );
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\nusage: listing [--small N] [--large N] [--calls N]");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let namespace = format!("outband-bench-listing-{}", std::process::id());
    let backend =
        match RedisQueue::with_options(&url, RedisOptions::default().namespace(&namespace)) {
            Ok(queue) => queue,
            Err(error) => {
                eprintln!("cannot open {url}: {error}");
                return ExitCode::FAILURE;
            }
        };
    let result = run_all(&backend, &options);
    if let Err(error) = outband_redis::delete_namespace(&backend, &namespace) {
        eprintln!("could not delete the namespace {namespace}: {error}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The timings of one call at one size.
struct Row {
    jobs: usize,
    call: &'static str,
    min: Duration,
    median: Duration,
    p99: Duration,
    /// Jobs in the last page, `None` for the ceiling's bare commands.
    returned: Option<usize>,
}

fn run_all(backend: &RedisQueue, options: &Options) -> Result<(), outband::Error> {
    let mut ids = Vec::with_capacity(options.large);
    let mut rows = Vec::new();
    for size in [options.small, options.large] {
        eprintln!("filling {QUEUE} to {size} jobs…");
        grow(backend, &mut ids, size)?;
        finish_oldest(backend)?;
        rows.extend(measure(backend, &ids, options.calls)?);
    }
    println!(
        "\nRedisQueue::jobs, {} calls of each, one client, queue `{QUEUE}` with 1 job in {RARE_EVERY} of a rare command\n",
        options.calls
    );
    println!("| jobs in the queue | call | min µs | median µs | p99 µs | jobs returned |");
    println!("|---:|---|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} |",
            bench::thousands(row.jobs as f64),
            row.call,
            row.min.as_secs_f64() * 1e6,
            row.median.as_secs_f64() * 1e6,
            row.p99.as_secs_f64() * 1e6,
            row.returned
                .map_or_else(|| "—".to_owned(), |n| n.to_string())
        );
    }
    println!();
    Ok(())
}

/// Enqueues jobs in batches until `ids` holds `size`, cancelling one in
/// [`CANCELLED_EVERY`].
fn grow(backend: &RedisQueue, ids: &mut Vec<JobId>, size: usize) -> Result<(), outband::Error> {
    let args = outband::codec::encode(&())?;
    while ids.len() < size {
        let first = ids.len();
        let batch = (first..size.min(first + BATCH))
            .map(|n| {
                let command = if n % RARE_EVERY == RARE_EVERY / 2 {
                    RARE
                } else {
                    COMMON
                };
                NewJob::new(command, args.clone()).queue(QUEUE)
            })
            .collect();
        let stored = backend.enqueue_many(batch)?;
        for (n, &id) in (first..).zip(&stored) {
            if n % CANCELLED_EVERY == CANCELLED_EVERY / 4 {
                backend.cancel(id, "cancelled for the listing bench")?;
            }
        }
        ids.extend(stored);
    }
    Ok(())
}

/// Claims the oldest [`FINISHED`] ready jobs and finishes them, half done,
/// half dead, so that the queue holds jobs in every state.
fn finish_oldest(backend: &RedisQueue) -> Result<(), outband::Error> {
    let claimed = backend.claim(QUEUE, FINISHED, Duration::from_secs(60))?;
    for (i, c) in claimed.into_iter().enumerate() {
        let outcome = if i % 2 == 0 {
            Outcome::Done {
                result: None,
                duration: Duration::from_micros(1),
            }
        } else {
            Outcome::Dead {
                error: "finished for the listing bench".into(),
            }
        };
        backend.complete(&c.lease, outcome)?;
    }
    Ok(())
}

/// One call the bench times: its name, and what it does, answering the
/// number of jobs a page returned (`None` for a bare command).
type Call<'a> = (
    &'static str,
    Box<dyn Fn() -> Result<Option<usize>, outband::Error> + 'a>,
);

/// Times every call `calls` times, in rounds that take each call once, so
/// that a slower moment of a shared machine falls on all of them alike.
fn measure(backend: &RedisQueue, ids: &[JobId], calls: usize) -> Result<Vec<Row>, outband::Error> {
    let jobs = ids.len();
    let (_, record) = outband_redis::keys_of(backend, QUEUE, ids[jobs / 2]);
    let page = |query: JobQuery| move || Ok(Some(backend.jobs(&query)?.jobs.len()));
    let first = JobQuery::new(QUEUE, JobState::Pending);
    let timed_calls: Vec<Call<'_>> = vec![
        ("first page, 50 pending", Box::new(page(first.clone()))),
        (
            "deep page, 50 pending below the middle job",
            Box::new(page(first.clone().before(ids[jobs / 2]))),
        ),
        (
            "rare command, a page that walks the SCAN bound",
            Box::new(page(first.command(RARE))),
        ),
        (
            "ceiling: bare PING",
            Box::new(|| {
                outband_redis::with_connection(backend, |con| {
                    redis::cmd("PING").query::<String>(con)
                })?;
                Ok(None)
            }),
        ),
        (
            "ceiling: bare HGETALL of one record",
            Box::new(|| {
                outband_redis::with_connection(backend, |con| {
                    redis::cmd("HGETALL")
                        .arg(&record)
                        .query::<redis::Value>(con)
                })?;
                Ok(None)
            }),
        ),
    ];
    // a few untimed rounds first: the first call loads the script
    let warm = 5;
    let mut times = vec![Vec::with_capacity(calls); timed_calls.len()];
    let mut returned = vec![None; timed_calls.len()];
    for round in 0..warm + calls {
        for (i, (_, call)) in timed_calls.iter().enumerate() {
            let start = Instant::now();
            returned[i] = call()?;
            if round >= warm {
                times[i].push(start.elapsed());
            }
        }
    }
    Ok(timed_calls
        .iter()
        .zip(times)
        .zip(returned)
        .map(|(((call, _), mut times), returned)| {
            times.sort_unstable();
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            Row {
                jobs,
                call,
                min: at(0.0),
                median: at(0.5),
                p99: at(0.99),
                returned,
            }
        })
        .collect())
}
