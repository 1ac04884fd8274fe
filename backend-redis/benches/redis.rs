//! Run with: cargo bench -p outband-redis --features bench --bench redis
//!
//! The benchmark of [`outband_bench`] on `RedisQueue` at `REDIS_URL`
//! (default `redis://127.0.0.1:6379/`), in a namespace of its own that is
//! deleted at the end, followed by what is particular to Redis:
//!
//! - **the round trip for scale**: bare `LPUSH`es one at a time from one
//!   thread, before and after the standard runs, to set the single enqueue
//!   beside (it is one round trip too);
//! - **single enqueue beside `LPUSH`**: blocks of 1,000 single enqueues and
//!   1,000 bare `LPUSH`es, alternating, `--jobs` / 1,000 of each: the
//!   median rates, and the median of what an enqueue costs beyond its round
//!   trip;
//! - **bytes per pending job**: `used_memory` of `INFO memory` before and
//!   after enqueuing `--memory-jobs` (default 100,000) pending no-op jobs,
//!   divided by their number;
//! - **rate against backlog**: the multi processor at 4 threads with a
//!   prefetch of `--prefetch` (default 28: 32 leases) runs `--jobs` (default
//!   20,000) no-op jobs while the same queue holds 1,000, then `--backlog`
//!   (default 1,000,000), more pending jobs of lower priority behind them,
//!   in `--rounds` (default 3) alternating rounds over the same two
//!   backlogs, with Redis's CPU time, script time and script calls and
//!   blocking pops (the consumer's round trips) per job for each run; the two should match, since no script
//!   does work in proportion to the backlog;
//! - **the backend alone**: 4 threads call `claim` and `complete_many`
//!   directly, with claims of 1 and of 4, to show what batching is worth;
//! - **the defaults beside the round trip**: in `--rounds` rounds, each run
//!   at `ProcessorConfig::default()` (1 and 4 threads, sync and async
//!   no-op jobs, and without a prefetch for comparison) right after bare
//!   `LPUSH`es one at a time, and the ratio of the two, which the machine's
//!   drift moves less than either; with Redis's CPU time and time in
//!   scripts per job over the run (the queue's fill included), whose
//!   product with the rate says how busy the server was.
//!
//! Options: `--jobs N`, `--memory-jobs N`, `--backlog N`, `--prefetch N`,
//! `--completers N` (default: the backend's choice, 2 on Redis), `--rounds N`,
//! and
//! `--backlog-only` or `--ceiling-only` to run only the backlog runs or only
//! the defaults beside the round trip. Other arguments,
//! such as the `--bench` that `cargo bench` passes, are ignored.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outband::{BaseQueue, MultiProcessor, NewJob, Outcome, ProcessorConfig, queue_command};
use outband_bench::{self as bench, BenchConfig};
use outband_redis::{RedisOptions, RedisQueue};

static BACKLOG_RUN: AtomicU64 = AtomicU64::new(0);

/// The job of the backlog runs: counts itself.
#[queue_command(name = "outband_redis::bench::counted")]
fn counted() {
    BACKLOG_RUN.fetch_add(1, Ordering::Relaxed);
}

struct Options {
    standard: bool,
    backlog_runs: bool,
    ceiling_runs: bool,
    jobs: usize,
    memory_jobs: usize,
    backlog: usize,
    prefetch: usize,
    /// `None`: the backend's choice, as `ProcessorConfig`'s.
    completers: Option<usize>,
    rounds: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        standard: true,
        backlog_runs: true,
        ceiling_runs: true,
        jobs: 20_000,
        memory_jobs: 100_000,
        backlog: 1_000_000,
        prefetch: 28,
        completers: None,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--backlog-only" {
            options.standard = false;
            options.ceiling_runs = false;
            continue;
        }
        if arg == "--ceiling-only" {
            options.standard = false;
            options.backlog_runs = false;
            continue;
        }
        let slot = match arg.as_str() {
            "--jobs" => &mut options.jobs,
            "--memory-jobs" => &mut options.memory_jobs,
            "--backlog" => &mut options.backlog,
            "--prefetch" => &mut options.prefetch,
            "--rounds" => &mut options.rounds,
            "--completers" => {
                let value = args.next().ok_or(format!("{arg} needs a number"))?;
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("{arg} {value}: not a number"))?;
                options.completers = Some(n.max(1));
                continue;
            }
            _ => continue,
        };
        let value = args.next().ok_or(format!("{arg} needs a number"))?;
        *slot = value
            .parse()
            .map_err(|_| format!("{arg} {value}: not a number"))?;
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!(
                "{message}\nusage: redis [--jobs N] [--memory-jobs N] [--backlog N] [--prefetch N] [--completers N] [--rounds N]"
            );
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let namespace = format!("outband-bench-{}", std::process::id());
    let backend =
        match RedisQueue::with_options(&url, RedisOptions::default().namespace(&namespace)) {
            Ok(queue) => Arc::new(queue),
            Err(error) => {
                eprintln!("cannot open {url}: {error}");
                return ExitCode::FAILURE;
            }
        };
    let result = run_all(&backend, &options);
    delete_namespace(&backend, &namespace);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_all(backend: &Arc<RedisQueue>, options: &Options) -> Result<(), outband::Error> {
    let config = BenchConfig {
        jobs: options.jobs,
        ..BenchConfig::default()
    };
    if options.standard {
        let before = lpush_rate(backend, options.jobs)?;
        let report = bench::run(backend.clone(), &config)?;
        let after = lpush_rate(backend, options.jobs)?;
        println!("RedisQueue, {} jobs per run\n", config.jobs);
        println!("{report}");
        println!(
            "the round trip for scale: LPUSH one at a time from one thread, {} jobs/s before the runs, {} after",
            before.round(),
            after.round()
        );

        let paired = single_enqueue_beside_lpush(backend, options.jobs)?;
        println!(
            "single enqueue beside LPUSH, {} blocks of 1,000 each, alternating: medians {} enqueues/s and {} LPUSH/s; \
             an enqueue takes {:.0} µs more than an LPUSH (median of the blocks' differences)",
            paired.blocks,
            paired.enqueue.round(),
            paired.lpush.round(),
            paired.extra_us
        );

        let bytes = bytes_per_pending_job(backend, options.memory_jobs)?;
        println!(
            "memory: {bytes:.0} bytes per pending no-op job ({} jobs, INFO memory used_memory), target < 250",
            options.memory_jobs
        );

        for batch in [1, 4] {
            let rate = raw_rate(backend, options.jobs, batch)?;
            println!(
                "backend alone, 4 threads each claiming {batch} and completing them in one call: {} jobs/s",
                rate.round()
            );
        }
    }

    if options.ceiling_runs {
        defaults_beside_the_round_trip(backend, options)?;
    }
    if options.backlog_runs {
        backlog_rounds(backend, options)?;
    }
    Ok(())
}

/// Each run at the defaults right after bare `LPUSH`es from one client, in
/// `--rounds` rounds, with the ratio of its rate to theirs; then the median
/// ratio of each run.
fn defaults_beside_the_round_trip(
    backend: &Arc<RedisQueue>,
    options: &Options,
) -> Result<(), outband::Error> {
    let config = BenchConfig {
        jobs: options.jobs,
        ..BenchConfig::default()
    };
    let runs = [
        (
            bench::Run::Multi {
                threads: 1,
                prefetch: None,
            },
            1.45,
        ),
        (
            bench::Run::Multi {
                threads: 4,
                prefetch: None,
            },
            2.3,
        ),
        (bench::Run::AsyncMulti { threads: 1 }, 2.7),
        (
            bench::Run::Multi {
                threads: 1,
                prefetch: Some(0),
            },
            0.0,
        ),
        (
            bench::Run::Multi {
                threads: 4,
                prefetch: Some(0),
            },
            0.0,
        ),
    ];
    let mut ratios = vec![Vec::new(); runs.len()];
    let mut rates = vec![Vec::new(); runs.len()];
    let mut server_cpu = vec![Vec::new(); runs.len()];
    let mut script = vec![Vec::new(); runs.len()];
    let jobs = options.jobs as f64;
    for round in 1..=options.rounds {
        for (i, &(run, _)) in runs.iter().enumerate() {
            let lpush = lpush_rate(backend, options.jobs)?;
            let before = server_counts(backend)?;
            let row = bench::run_one(backend.clone(), &config, run)?;
            let after = server_counts(backend)?;
            let cpu_us = (after.cpu - before.cpu) * 1e6 / jobs;
            let script_us = (after.script_us - before.script_us) / jobs;
            println!(
                "round {round}: {run}: {} jobs/s beside {} LPUSH/s: {:.2}×; \
                 Redis {cpu_us:.1} µs CPU, {script_us:.1} µs in scripts a job, \
                 {:.3} calls a job",
                row.jobs_per_sec.round(),
                lpush.round(),
                row.jobs_per_sec / lpush,
                (after.calls - before.calls) / jobs,
            );
            ratios[i].push(row.jobs_per_sec / lpush);
            rates[i].push(row.jobs_per_sec);
            server_cpu[i].push(cpu_us);
            script[i].push(script_us);
        }
    }
    println!(
        "\n| run, `ProcessorConfig::default()` | jobs/s (median) | × one-client `LPUSH` (median) \
         | Redis CPU a job (median) | in scripts a job (median) | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, &(run, target)) in runs.iter().enumerate() {
        let target = if target > 0.0 {
            format!("≥ {target}×")
        } else {
            "—".to_owned()
        };
        println!(
            "| {run} | {} | {:.2}× | {:.1} µs | {:.1} µs | {target} |",
            bench::thousands(median(&mut rates[i])),
            median(&mut ratios[i]),
            median(&mut server_cpu[i]),
            median(&mut script[i]),
        );
    }
    println!();
    Ok(())
}

/// The rate with 1,000 and with `--backlog` jobs pending behind, in
/// `--rounds` alternating rounds over the same two backlogs (filled once),
/// so that a slower minute of a shared machine falls on both. Each run also
/// reports Redis's own time per job: the CPU time of the server process and
/// the time inside the scripts (`INFO cpu`, `INFO commandstats`), which do
/// not swing with the client's share of the machine as the rate does; and
/// the script calls and blocking pops per job, which are the consumer's
/// round trips.
fn backlog_rounds(backend: &Arc<RedisQueue>, options: &Options) -> Result<(), outband::Error> {
    let sizes = [1_000, options.backlog];
    for backlog in sizes {
        eprintln!("filling outband-bench-backlog-{backlog} with {backlog} jobs…");
        fill(backend, &backlog_queue(backlog), backlog, -1)?;
    }
    let completers = options
        .completers
        .unwrap_or_else(|| backend.capabilities().default_completers());
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=options.rounds {
        for (i, backlog) in sizes.into_iter().enumerate() {
            let run = run_over_backlog(backend, options, backlog)?;
            println!(
                "round {round}: multi processor, 4 threads, prefetch {}, {completers} completers, \
                 {backlog} jobs pending behind: {} jobs/s; Redis {:.1} µs CPU, {:.1} µs in scripts, \
                 {:.3} round trips per job",
                options.prefetch,
                run.rate.round(),
                run.server_cpu_us,
                run.script_us,
                run.calls,
            );
            rates[i].push(run.rate);
        }
    }
    for (i, backlog) in sizes.into_iter().enumerate() {
        println!(
            "median of {} rounds, {backlog} jobs pending behind: {} jobs/s",
            options.rounds,
            median(&mut rates[i]).round()
        );
    }
    for backlog in sizes {
        backend.flush(&backlog_queue(backlog))?;
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn noop_job(queue: &str, priority: i16) -> NewJob {
    NewJob::new(
        counted::NAME,
        outband::codec::encode(&()).unwrap_or_default(),
    )
    .queue(queue)
    .priority(priority)
}

fn fill(
    backend: &RedisQueue,
    name: &str,
    count: usize,
    priority: i16,
) -> Result<(), outband::Error> {
    let mut left = count;
    while left > 0 {
        let batch = left.min(1000);
        backend.enqueue_many((0..batch).map(|_| noop_job(name, priority)).collect())?;
        left -= batch;
    }
    Ok(())
}

fn used_memory(backend: &RedisQueue) -> Result<u64, outband::Error> {
    let info: String =
        outband_redis::with_connection(backend, |con| redis::cmd("INFO").arg("memory").query(con))?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| outband::Error::backend("INFO memory has no used_memory"))
}

fn bytes_per_pending_job(backend: &RedisQueue, jobs: usize) -> Result<f64, outband::Error> {
    // the no-op job of outband-bench, on a queue name of the same length
    let name = "outband-bench-memory";
    let args = outband::codec::encode(&())?;
    let before = used_memory(backend)?;
    let mut left = jobs;
    while left > 0 {
        let batch = left.min(1000);
        backend.enqueue_many(
            (0..batch)
                .map(|_| NewJob::new(bench::noop::NAME, args.clone()).queue(name))
                .collect(),
        )?;
        left -= batch;
    }
    let after = used_memory(backend)?;
    backend.flush(name)?;
    Ok(after.saturating_sub(before) as f64 / jobs as f64)
}

fn backlog_queue(backlog: usize) -> String {
    format!("outband-bench-backlog-{backlog}")
}

struct BacklogRun {
    rate: f64,
    server_cpu_us: f64,
    script_us: f64,
    calls: f64,
}

/// What Redis has counted so far: its CPU seconds (`used_cpu_sys` +
/// `used_cpu_user`), the microseconds spent in `EVALSHA` and `EVAL`, and the
/// calls of those and of `BLPOP`: what a consumer sends, one round trip each
/// (`INFO commandstats` also counts the commands scripts run, which are not).
#[derive(Default)]
struct ServerCounts {
    cpu: f64,
    script_us: f64,
    calls: f64,
}

fn server_counts(backend: &RedisQueue) -> Result<ServerCounts, outband::Error> {
    let info: String = outband_redis::with_connection(backend, |con| {
        redis::cmd("INFO").arg("cpu").arg("commandstats").query(con)
    })?;
    let stat = |value: &str, name: &str| -> f64 {
        value
            .split(',')
            .find_map(|pair| pair.strip_prefix(name))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    let mut counts = ServerCounts::default();
    for line in info.lines() {
        if let Some((field, value)) = line.split_once(':') {
            match field {
                "used_cpu_sys" | "used_cpu_user" => {
                    counts.cpu += value.trim().parse().unwrap_or(0.0);
                }
                "cmdstat_evalsha" | "cmdstat_eval" => {
                    counts.calls += stat(value, "calls=");
                    counts.script_us += stat(value, "usec=");
                }
                "cmdstat_blpop" => counts.calls += stat(value, "calls="),
                _ => {}
            }
        }
    }
    Ok(counts)
}

/// `--jobs` jobs of priority 0 run over the backlog of priority -1 that
/// `backlog_queue(backlog)` holds.
fn run_over_backlog(
    backend: &Arc<RedisQueue>,
    options: &Options,
    backlog: usize,
) -> Result<BacklogRun, outband::Error> {
    let jobs = options.jobs;
    let name = backlog_queue(backlog);
    fill(backend, &name, jobs, 0)?;
    BACKLOG_RUN.store(0, Ordering::SeqCst);
    let mut config = ProcessorConfig::default()
        .queues([name.as_str()])
        .max_threads(4)
        .prefetch(options.prefetch)
        .wait_time(Duration::from_millis(10));
    config.completers = options.completers;
    let processor = MultiProcessor::new(backend.clone(), config)?;
    let before = server_counts(backend)?;
    let start = Instant::now();
    processor.start();
    while BACKLOG_RUN.load(Ordering::SeqCst) < jobs as u64 {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    let after = server_counts(backend)?;
    processor.stop();
    Ok(BacklogRun {
        rate: jobs as f64 / elapsed.as_secs_f64(),
        server_cpu_us: (after.cpu - before.cpu) * 1e6 / jobs as f64,
        script_us: (after.script_us - before.script_us) / jobs as f64,
        calls: (after.calls - before.calls) / jobs as f64,
    })
}

/// Bare `LPUSH`es a second, one at a time from one thread through the
/// queue's own connections: the round trip the single enqueue pays once,
/// measured as `redis-benchmark -t lpush -c 1` does, in the same minute as
/// the runs, since a shared machine's round trip swings from hour to hour.
fn lpush_rate(backend: &RedisQueue, count: usize) -> Result<f64, outband::Error> {
    let key = format!("{}:bench:lpush", backend.options().namespace);
    let start = Instant::now();
    for _ in 0..count {
        outband_redis::with_connection(backend, |con| {
            redis::cmd("LPUSH").arg(&key).arg("x").query::<i64>(con)
        })?;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    outband_redis::with_connection(backend, |con| redis::cmd("DEL").arg(&key).query::<i64>(con))?;
    Ok(rate)
}

struct Paired {
    blocks: usize,
    enqueue: f64,
    lpush: f64,
    extra_us: f64,
}

/// Single enqueues (each building its job as `#[queue_command]` does) and
/// bare `LPUSH`es in alternating blocks of 1,000, so that both meet the
/// same minutes of a machine whose round trip swings: the medians of each,
/// and the median of the blocks' differences in time per call, which is
/// what an enqueue costs beyond its one round trip.
fn single_enqueue_beside_lpush(
    backend: &RedisQueue,
    jobs: usize,
) -> Result<Paired, outband::Error> {
    const BLOCK: usize = 1000;
    let blocks = (jobs / BLOCK).max(1);
    let name = "outband-bench-paired";
    let (mut enqueue, mut lpush, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        let start = Instant::now();
        for _ in 0..BLOCK {
            backend.enqueue(noop_job(name, 0))?;
        }
        let enqueue_us = start.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
        let lpush_us = 1e6 / lpush_rate(backend, BLOCK)?;
        enqueue.push(1e6 / enqueue_us);
        lpush.push(1e6 / lpush_us);
        extra.push(enqueue_us - lpush_us);
    }
    backend.flush(name)?;
    Ok(Paired {
        blocks,
        enqueue: median(&mut enqueue),
        lpush: median(&mut lpush),
        extra_us: median(&mut extra),
    })
}

/// Jobs per second through `claim` and `complete_many` alone, without a
/// processor: 4 threads, each claiming `batch` jobs at a time.
fn raw_rate(backend: &Arc<RedisQueue>, jobs: usize, batch: usize) -> Result<f64, outband::Error> {
    let name = format!("outband-bench-raw-{batch}");
    fill(backend, &name, jobs, 0)?;
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let name = name.as_str();
                scope.spawn(move || -> Result<(), outband::Error> {
                    loop {
                        let claimed = backend.claim(name, batch, Duration::from_secs(60))?;
                        if claimed.is_empty() {
                            return Ok(());
                        }
                        let done = Outcome::Done {
                            result: None,
                            duration: Duration::from_micros(1),
                        };
                        backend.complete_many(
                            claimed
                                .into_iter()
                                .map(|c| (c.lease, done.clone()))
                                .collect(),
                        )?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(outband::Error::backend("a worker panicked")))
        })
    })?;
    Ok(jobs as f64 / start.elapsed().as_secs_f64())
}

fn delete_namespace(backend: &RedisQueue, namespace: &str) {
    if let Err(error) = outband_redis::delete_namespace(backend, namespace) {
        eprintln!("could not delete the namespace {namespace}: {error}");
    }
}
