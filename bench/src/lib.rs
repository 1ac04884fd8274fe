//! The benchmark every outband backend runs: how fast jobs go in, how fast
//! they are processed, and how long a job waits between enqueue and start.
//!
//! ```
//! use outband::MemoryQueue;
//! use outband_bench::{BenchConfig, Run};
//! use std::sync::Arc;
//!
//! let config = BenchConfig { jobs: 500, threads: vec![2], progress: false, ..BenchConfig::default() };
//! let report = outband_bench::run(Arc::new(MemoryQueue::new()), &config)?;
//! println!("{report}");
//! assert!(report.row(Run::Simple).is_some_and(|row| row.jobs_per_sec > 0.0));
//! # Ok::<(), outband::Error>(())
//! ```
//!
//! [`run`] takes any [`BaseQueue`] and runs, in this order:
//!
//! | run | what it measures |
//! |---|---|
//! | [`Run::Enqueue`] | [`enqueue`](BaseQueue::enqueue) of `jobs` no-op jobs, one per call, from one thread |
//! | [`Run::EnqueueMany`] | the same through [`enqueue_many`](BaseQueue::enqueue_many), `batch` jobs per call |
//! | [`Run::Simple`] | `jobs` no-op jobs run by a [`SimpleProcessor`] |
//! | [`Run::Multi`] | the same by a [`MultiProcessor`], once per entry of `threads` |
//! | [`Run::AsyncMulti`] | `jobs` async no-op jobs ([`noop_async`]) by a [`MultiProcessor`] on its async runtime, once per entry of `async_threads` |
//! | [`Run::Latency`] | p50 and p99 from enqueue to start, one job at a time, by an idle [`MultiProcessor`] |
//!
//! and returns a [`BenchReport`] whose `Display` is a Markdown table. The Redis
//! and SQL backends' benches and the daemon's `bench` command (outband-daemon's
//! feature `bench`) call the same function with their own backend;
//! `bench/benches/memory.rs` runs it on [`MemoryQueue`](outband::MemoryQueue).
//!
//! This crate has no feature flags. It draws its progress bar with indicatif,
//! and turns on outband's `runtime` feature, which the async runs need.
//!
//! # Why the figures are honest
//!
//! - **The jobs do nothing.** They run [`noop`], whose body only counts
//!   itself, so processing throughput is the cost of the framework and the
//!   backend: claim, lease bookkeeping, lookup, decoding, catching panics,
//!   completion. On `MemoryQueue` with one thread, the µs per job of the
//!   simple processor *is* the framework's own cost per job
//!   ([`BenchReport::framework_cost`]).
//! - **The clock stops when the last job has run**, signalled by that job
//!   itself: nothing polls the backend while a run is timed. Only the last
//!   job's completion call falls outside the measured time. The jobs of a
//!   processing run are enqueued before its clock starts; the processor's
//!   start, threads included, is inside it.
//! - **Producers pay what a real producer pays**: each enqueue encodes its
//!   arguments and builds its [`NewJob`], as `#[queue_command]` does.
//! - **Latency is measured end to end**: the producer stamps the job with the
//!   wall clock just before enqueuing it, and [`started`] takes the difference
//!   when it begins to run. Producer and consumer are this one process, so
//!   the two readings come from one clock. Jobs are spaced (ten times the
//!   per-job time of the matching multi-processor run, between 200 µs and
//!   20 ms) so the consumer keeps up and the figure is the wake-up path, not a
//!   backlog.
//! - **Every run is checked**: after each processing run the backend must
//!   report every job `done` and none pending, or [`run`] fails.
//!
//! # What it leaves behind
//!
//! Each run uses its own queue, `<BenchConfig::queue>-<run>` (for example
//! `outband-bench-4242-1-multi-2`), which must hold no pending job when the
//! run starts. Pending jobs are flushed after each run. `done` jobs stay until
//! the backend's regular [`purge`](BaseQueue::purge): the benchmark does not
//! purge, because a purge reaches every queue of a shared backend.
//!
//! Only one benchmark runs at a time in a process: [`run`] waits for any other
//! call to finish.
//!
//! # Only when asked for
//!
//! The benchmark's three commands, [`noop`], [`noop_async`] and [`started`],
//! are not registered: the [global registry](Registry::global) does not list them, a
//! processor does not serve their queue `outband-bench` and does not know
//! their names, even in a program that links this crate. Only [`run`] runs
//! them, on processors of its own that know these commands and no other;
//! nothing needs to be called before it.

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use outband::__private::{CommandFuture, Run as RunKind, RunError, decode_args, output_value};
use outband::{
    BaseQueue, Command, DEFAULT_MAX_ATTEMPTS, Error, JobContext, MultiProcessor, NewJob, Processor,
    ProcessorConfig, Registry, SimpleProcessor, codec,
};

/// The command of the throughput runs: does nothing but count itself, so
/// that [`run`] knows, without asking the backend, when the last one has run.
pub mod noop {
    /// The command's name, which the benchmark's jobs refer to it by.
    pub const NAME: &str = "outband::bench::noop";
}

/// The command of the async throughput runs: [`noop`] as an `async fn`,
/// which the processor runs on its async runtime rather than on a thread.
pub mod noop_async {
    /// The command's name, which the benchmark's jobs refer to it by.
    pub const NAME: &str = "outband::bench::noop_async";
}

/// The command of the latency run: records the time since the producer's
/// wall clock, in nanoseconds since the Unix epoch, that its one argument
/// holds, stamped just before the job was enqueued.
pub mod started {
    /// The command's name, which the benchmark's jobs refer to it by.
    pub const NAME: &str = "outband::bench::started";
}

/// The queue the two commands name. Each run enqueues onto a queue of its
/// own, `<BenchConfig::queue>-<run>`, so this one stays empty.
const QUEUE: &str = "outband-bench";

/// Written out rather than by `#[queue_command]`, which would register them
/// in every program that links this crate: they run the way the macro's
/// commands run, decoding their arguments and encoding their unit result.
static NOOP: Command = Command {
    name: noop::NAME,
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
    run: RunKind::Sync(run_noop),
};

static STARTED: Command = Command {
    name: started::NAME,
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
    run: RunKind::Sync(run_started),
};

fn run_noop(args: &[u8], _: &JobContext) -> Result<Option<Vec<u8>>, RunError> {
    decode_args::<()>(args)?;
    TALLY.count();
    output_value(())
}

fn run_noop_async(args: &[u8], _: &JobContext) -> CommandFuture {
    // as the macro's async commands: the arguments are decoded at once
    let decoded = decode_args::<()>(args);
    Box::pin(async move {
        decoded?;
        TALLY.count();
        output_value(())
    })
}

/// The registry of an async run: [`noop_async`] with `queue` as its queue.
/// A processor runs a command on its async runtime only when the command's
/// queue is one it serves, and each run has a queue of its own. Leaked, as a
/// processor needs a `&'static Registry`: one command and one registry per
/// async run.
fn async_registry(queue: &str) -> Result<&'static Registry, Error> {
    let command: &'static Command = Box::leak(Box::new(Command {
        name: noop_async::NAME,
        queue: Box::leak(queue.to_owned().into_boxed_str()),
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
        run: RunKind::Async(run_noop_async),
    }));
    Ok(Box::leak(Box::new(Registry::from_commands([command])?)))
}

fn run_started(args: &[u8], _: &JobContext) -> Result<Option<Vec<u8>>, RunError> {
    let (enqueued_ns,) = decode_args::<(u64,)>(args)?;
    let waited = now_ns().saturating_sub(enqueued_ns);
    lock(&LATENCIES).push(waited);
    TALLY.count();
    output_value(())
}

/// The registry the benchmark's processors run: its two commands, and no
/// other.
fn registry() -> Result<&'static Registry, Error> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    if let Some(registry) = REGISTRY.get() {
        return Ok(registry);
    }
    let registry = Registry::from_commands([&NOOP, &STARTED])?;
    Ok(REGISTRY.get_or_init(|| registry))
}

/// What to run, and how much of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// Jobs per run. Default 20,000. The latency run uses a tenth of them.
    pub jobs: usize,
    /// Jobs per [`enqueue_many`](BaseQueue::enqueue_many) call, in
    /// [`Run::EnqueueMany`] and when filling the queue for a processing run.
    /// Default 1,000.
    pub batch: usize,
    /// One [`Run::Multi`] per entry, with that many threads; the largest one
    /// also runs [`Run::Latency`]. Default `[1, 2, 4]`.
    pub threads: Vec<usize>,
    /// One more [`Run::Multi`] per entry, with the largest thread count and
    /// that fixed [`prefetch`](ProcessorConfig::prefetch), where the runs of
    /// `threads` take the default adaptive one. Default `[0, 28]`: none,
    /// one lease per thread, as Sidekiq's threads fetch; and 32 leases for
    /// 4 threads.
    pub prefetch: Vec<usize>,
    /// One [`Run::AsyncMulti`] per entry, with that many threads and the
    /// default [`concurrency`](ProcessorConfig::concurrency). Default
    /// `[1, 4]`; empty skips the async runs.
    pub async_threads: Vec<usize>,
    /// The multi processors' [`completers`](ProcessorConfig::completers).
    /// Default `None`: the backend's choice, as `ProcessorConfig`'s.
    pub completers: Option<usize>,
    /// The prefix of the queues the runs use; each run appends its own name.
    /// Default `outband-bench-<pid>-<n>`, new on every call of `default()`.
    pub queue: String,
    /// The processors' [`wait_time`](ProcessorConfig::wait_time): on a backend
    /// that cannot wake a waiting processor, it bounds the latency. Default 10 ms.
    pub wait_time: Duration,
    /// Whether to draw a progress bar on stderr. Default: whether stderr is a
    /// terminal.
    pub progress: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        Self {
            jobs: 20_000,
            batch: 1_000,
            threads: vec![1, 2, 4],
            prefetch: vec![0, 28],
            async_threads: vec![1, 4],
            completers: None,
            queue: format!(
                "outband-bench-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            wait_time: Duration::from_millis(10),
            progress: std::io::stderr().is_terminal(),
        }
    }
}

/// One measurement of a [`BenchReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Run {
    /// [`enqueue`](BaseQueue::enqueue), one job per call, from one thread.
    Enqueue,
    /// [`enqueue_many`](BaseQueue::enqueue_many), from one thread.
    EnqueueMany {
        /// Jobs per call.
        batch: usize,
    },
    /// No-op jobs run by a [`SimpleProcessor`].
    Simple,
    /// No-op jobs run by a [`MultiProcessor`].
    Multi {
        /// Its `max_threads`.
        threads: usize,
        /// Its fixed [`prefetch`](ProcessorConfig::prefetch), or `None` for
        /// the default adaptive one.
        prefetch: Option<usize>,
    },
    /// Async no-op jobs run by a [`MultiProcessor`] on its async runtime,
    /// with the default [`concurrency`](ProcessorConfig::concurrency).
    AsyncMulti {
        /// Its `max_threads`, on which its claims and completions run.
        threads: usize,
    },
    /// Time from enqueue to start, jobs enqueued one at a time to an idle
    /// [`MultiProcessor`].
    Latency {
        /// Its `max_threads`.
        threads: usize,
    },
}

impl Run {
    /// The suffix of the run's queue name.
    fn slug(self) -> String {
        match self {
            Self::Enqueue => "enqueue".to_owned(),
            Self::EnqueueMany { .. } => "enqueue-many".to_owned(),
            Self::Simple => "simple".to_owned(),
            Self::Multi {
                threads,
                prefetch: None,
            } => format!("multi-{threads}"),
            Self::Multi {
                threads,
                prefetch: Some(prefetch),
            } => format!("multi-{threads}-{prefetch}"),
            Self::AsyncMulti { threads } => format!("async-multi-{threads}"),
            Self::Latency { .. } => "latency".to_owned(),
        }
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        match *self {
            Self::Enqueue => f.write_str("enqueue, one at a time"),
            Self::EnqueueMany { batch } => write!(f, "enqueue_many, batches of {batch}"),
            Self::Simple => f.write_str("simple processor"),
            Self::Multi { threads, prefetch } => {
                write!(f, "multi processor, {threads} thread{}", plural(threads))?;
                match prefetch {
                    None => Ok(()),
                    Some(0) => f.write_str(", no prefetch"),
                    Some(prefetch) => write!(f, ", prefetch {prefetch}"),
                }
            }
            Self::AsyncMulti { threads } => write!(
                f,
                "async jobs, multi processor, {threads} thread{}, concurrency {}",
                plural(threads),
                ProcessorConfig::default().concurrency
            ),
            Self::Latency { threads } => {
                write!(
                    f,
                    "enqueue → start, multi processor, {threads} thread{}",
                    plural(threads)
                )
            }
        }
    }
}

/// Percentiles of the time from enqueue to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// What ran.
    pub run: Run,
    /// The queue it used, where its `done` jobs stay until purged.
    pub queue: String,
    /// Jobs enqueued, or processed.
    pub jobs: usize,
    /// The measured time.
    pub elapsed: Duration,
    /// `jobs / elapsed`. For [`Run::Latency`], the rate at which jobs were
    /// offered.
    pub jobs_per_sec: f64,
    /// `elapsed / jobs`, wall-clock time per job; `None` for [`Run::Latency`].
    pub per_job: Option<Duration>,
    /// Time from enqueue to start; only for [`Run::Latency`].
    pub latency: Option<Latency>,
}

/// Every row of a benchmark, in the order they ran.
///
/// Its `Display` is a Markdown table, ready to paste into a README.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchReport {
    /// The rows.
    pub rows: Vec<BenchRow>,
}

impl BenchReport {
    /// The row of `run`, if it ran.
    pub fn row(&self, run: Run) -> Option<&BenchRow> {
        self.rows.iter().find(|row| row.run == run)
    }

    /// The time per no-op job of the simple processor: on `MemoryQueue`, the
    /// framework's own cost per processed job.
    pub fn framework_cost(&self) -> Option<Duration> {
        self.row(Run::Simple).and_then(|row| row.per_job)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| run | jobs | time | jobs/s | µs/job | p50 | p99 |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        let micros = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
        for row in &self.rows {
            let per_job = row.per_job.map_or_else(
                || "—".to_owned(),
                |d| format!("{:.2}", d.as_secs_f64() * 1e6),
            );
            let (p50, p99) = row.latency.map_or_else(
                || ("—".to_owned(), "—".to_owned()),
                |l| (micros(l.p50), micros(l.p99)),
            );
            writeln!(
                f,
                "| {} | {} | {:.1} ms | {} | {per_job} | {p50} | {p99} |",
                row.run,
                row.jobs,
                row.elapsed.as_secs_f64() * 1e3,
                thousands(row.jobs_per_sec),
            )?;
        }
        Ok(())
    }
}

/// `1234567.8` as `1,234,568`: how the benches print rates.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Runs every measurement of the [crate documentation](crate) on `backend` and
/// returns the figures.
///
/// Fails on the first backend error; with [`Error::Config`] if `jobs` or
/// `batch` is 0, an entry of `threads` is 0, or a run's queue already holds
/// pending jobs; and with [`Error::Backend`] if a run's jobs did not all end
/// `done`, or no job made progress for a minute.
///
/// This is how a program asks for the benchmark: its processors run the
/// benchmark's commands, which no other processor knows (see
/// [Only when asked for](crate#only-when-asked-for)).
pub fn run(backend: Arc<dyn BaseQueue>, config: &BenchConfig) -> Result<BenchReport, Error> {
    let _one = lock(&ONE_AT_A_TIME);
    check(config)?;
    let registry = registry()?;

    let mut runs = vec![
        Run::Enqueue,
        Run::EnqueueMany {
            batch: config.batch,
        },
        Run::Simple,
    ];
    runs.extend(config.threads.iter().map(|&threads| Run::Multi {
        threads,
        prefetch: None,
    }));
    let latency_threads = config.threads.iter().copied().max().unwrap_or(1);
    runs.extend(config.prefetch.iter().map(|&prefetch| Run::Multi {
        threads: latency_threads,
        prefetch: Some(prefetch),
    }));
    runs.extend(
        config
            .async_threads
            .iter()
            .map(|&threads| Run::AsyncMulti { threads }),
    );
    runs.push(Run::Latency {
        threads: latency_threads,
    });

    let bench = Bench {
        backend,
        registry,
        config,
        runs: runs.len(),
    };
    let mut report = BenchReport::default();
    for (index, &run) in runs.iter().enumerate() {
        let bar = bench.bar(index, run);
        let row = match run {
            Run::Enqueue | Run::EnqueueMany { .. } => bench.enqueue(run, &bar)?,
            Run::Simple | Run::Multi { .. } | Run::AsyncMulti { .. } => bench.process(run, &bar)?,
            Run::Latency { threads } => {
                let per_job = report
                    .row(Run::Multi {
                        threads,
                        prefetch: None,
                    })
                    .and_then(|row| row.per_job);
                bench.latency(run, per_job, &bar)?
            }
        };
        bar.finish_and_clear();
        report.rows.push(row);
    }
    Ok(report)
}

/// Runs measure one at a time: two at once would share the machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn check(config: &BenchConfig) -> Result<(), Error> {
    if config.jobs == 0 || config.batch == 0 {
        return Err(Error::Config(
            "the benchmark needs `jobs` and `batch` of at least 1".into(),
        ));
    }
    if config.threads.contains(&0) || config.async_threads.contains(&0) {
        return Err(Error::Config(
            "a multi processor needs at least one thread".into(),
        ));
    }
    Ok(())
}

/// `run` alone, measured as [`run`] measures it, for a bench that
/// alternates it with a raw ceiling of its own so that both meet the same
/// minute of a machine whose speed drifts. A latency run reports its
/// percentiles only.
pub fn run_one(
    backend: Arc<dyn BaseQueue>,
    config: &BenchConfig,
    run: Run,
) -> Result<BenchRow, Error> {
    let _one = lock(&ONE_AT_A_TIME);
    check(config)?;
    if let Run::Multi { threads: 0, .. }
    | Run::AsyncMulti { threads: 0 }
    | Run::Latency { threads: 0 } = run
    {
        return Err(Error::Config(
            "a multi processor needs at least one thread".into(),
        ));
    }
    let bench = Bench {
        backend,
        registry: registry()?,
        config,
        runs: 1,
    };
    let bar = bench.bar(0, run);
    let row = match run {
        Run::Enqueue | Run::EnqueueMany { .. } => bench.enqueue(run, &bar),
        Run::Simple | Run::Multi { .. } | Run::AsyncMulti { .. } => bench.process(run, &bar),
        Run::Latency { .. } => bench.latency(run, None, &bar),
    };
    bar.finish_and_clear();
    row
}

/// A run that sees no job finish for this long has stalled.
const STALL: Duration = Duration::from_secs(60);

/// How often a waiting run redraws its progress bar and checks for a stall.
const TICK: Duration = Duration::from_millis(50);

struct Bench<'a> {
    backend: Arc<dyn BaseQueue>,
    registry: &'static Registry,
    config: &'a BenchConfig,
    runs: usize,
}

impl Bench<'_> {
    fn bar(&self, index: usize, run: Run) -> ProgressBar {
        if !self.config.progress {
            return ProgressBar::hidden();
        }
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {human_pos}/{human_len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let jobs = match run {
            Run::Latency { .. } => latency_jobs(self.config.jobs),
            _ => self.config.jobs,
        };
        ProgressBar::with_draw_target(Some(jobs as u64), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(format!("[{}/{}] {run}", index + 1, self.runs))
    }

    /// The run's own queue, checked to hold no pending job.
    fn fresh_queue(&self, run: Run) -> Result<String, Error> {
        let name = format!("{}-{}", self.config.queue, run.slug());
        let pending = self.backend.len(&name)?;
        if pending > 0 {
            return Err(Error::Config(format!(
                "the benchmark queue `{name}` already holds {pending} pending jobs; \
                 choose another BenchConfig::queue"
            )));
        }
        Ok(name)
    }

    fn enqueue(&self, run: Run, bar: &ProgressBar) -> Result<BenchRow, Error> {
        let name = self.fresh_queue(run)?;
        let jobs = self.config.jobs;
        let start = Instant::now();
        match run {
            Run::EnqueueMany { batch } => {
                let mut sent = 0;
                while sent < jobs {
                    let size = batch.min(jobs - sent);
                    let batch = (0..size)
                        .map(|_| noop_job(&name))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.backend.enqueue_many(batch)?;
                    sent += size;
                    bar.set_position(sent as u64);
                }
            }
            _ => {
                for sent in 0..jobs {
                    self.backend.enqueue(noop_job(&name)?)?;
                    if sent % 1024 == 0 {
                        bar.set_position(sent as u64);
                    }
                }
            }
        }
        let elapsed = start.elapsed();
        let stored = self.backend.len(&name)?;
        let flushed = self.backend.flush(&name)?;
        if stored != jobs as u64 || flushed != stored {
            return Err(Error::backend(format!(
                "{run}: enqueued {jobs} jobs, but the queue held {stored} and flushed {flushed}"
            )));
        }
        Ok(throughput_row(run, name, jobs, elapsed))
    }

    fn process(&self, run: Run, bar: &ProgressBar) -> Result<BenchRow, Error> {
        let name = self.fresh_queue(run)?;
        let jobs = self.config.jobs;
        let command = match run {
            Run::AsyncMulti { .. } => noop_async::NAME,
            _ => noop::NAME,
        };
        let mut sent = 0;
        while sent < jobs {
            let size = self.config.batch.min(jobs - sent);
            self.backend.enqueue_many(
                (0..size)
                    .map(|_| job_of(command, &name))
                    .collect::<Result<_, _>>()?,
            )?;
            sent += size;
        }
        let done_before = self.backend.stats(&name)?.done;
        let processor = self.processor(run, &name)?;

        TALLY.arm(jobs as u64);
        let start = Instant::now();
        let running = Started::new(&processor);
        let finished = TALLY.wait(bar);
        drop(running);
        let elapsed = finished?.saturating_duration_since(start);

        let pending = self.backend.len(&name)?;
        let stats = self.backend.stats(&name)?;
        let done = stats.done.saturating_sub(done_before);
        if pending != 0 || stats.running != 0 || done != jobs as u64 {
            let _ = self.backend.flush(&name);
            return Err(Error::backend(format!(
                "{run}: of {jobs} jobs, {done} ended done, {pending} are pending, \
                 {} running and {} dead",
                stats.running, stats.dead
            )));
        }
        Ok(throughput_row(run, name, jobs, elapsed))
    }

    fn latency(
        &self,
        run: Run,
        per_job: Option<Duration>,
        bar: &ProgressBar,
    ) -> Result<BenchRow, Error> {
        let name = self.fresh_queue(run)?;
        let jobs = latency_jobs(self.config.jobs);
        let spacing = per_job
            .map_or(Duration::from_millis(1), |d| d * 10)
            .clamp(Duration::from_micros(200), Duration::from_millis(20));
        let processor = self.processor(run, &name)?;
        lock(&LATENCIES).clear();
        TALLY.arm(jobs as u64);
        let running = Started::new(&processor);
        // let the threads start and go idle: the figure is the wake-up path
        std::thread::sleep(self.config.wait_time.max(Duration::from_millis(20)));

        let start = Instant::now();
        let mut next = start;
        let mut sent = Ok(());
        for i in 0..jobs {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(next - now);
            }
            next = next.max(now) + spacing;
            let job = codec::encode(&(now_ns(),))
                .map_err(Error::from)
                .map(|args| NewJob::new(started::NAME, args).queue(name.as_str()));
            if let Err(error) = job.and_then(|job| self.backend.enqueue(job)) {
                sent = Err(error);
                break;
            }
            bar.set_position(i as u64 + 1);
        }
        let finished = sent.and_then(|()| TALLY.wait(bar));
        drop(running);
        let elapsed = finished?.saturating_duration_since(start);
        let _ = self.backend.flush(&name);

        let mut waited: Vec<Duration> = lock(&LATENCIES)
            .drain(..)
            .map(Duration::from_nanos)
            .collect();
        waited.sort_unstable();
        if waited.len() != jobs {
            return Err(Error::backend(format!(
                "{run}: {jobs} jobs were enqueued but {} started",
                waited.len()
            )));
        }
        Ok(BenchRow {
            run,
            queue: name,
            jobs,
            elapsed,
            jobs_per_sec: rate(jobs, elapsed),
            per_job: None,
            latency: Some(Latency {
                p50: percentile(&waited, 50),
                p99: percentile(&waited, 99),
            }),
        })
    }

    fn processor(&self, run: Run, name: &str) -> Result<Processor, Error> {
        let mut config = ProcessorConfig::default()
            .queues([name])
            .wait_time(self.config.wait_time);
        config.completers = self.config.completers;
        let backend = self.backend.clone();
        Ok(match run {
            Run::Multi { threads, prefetch } => {
                let mut config = config.max_threads(threads);
                if let Some(prefetch) = prefetch {
                    config = config.prefetch(prefetch);
                }
                MultiProcessor::with_registry(backend, config, self.registry)?.into()
            }
            Run::AsyncMulti { threads } => MultiProcessor::with_registry(
                backend,
                config.max_threads(threads),
                async_registry(name)?,
            )?
            .into(),
            Run::Latency { threads } => {
                MultiProcessor::with_registry(backend, config.max_threads(threads), self.registry)?
                    .into()
            }
            _ => SimpleProcessor::with_registry(backend, config, self.registry)?.into(),
        })
    }
}

/// A no-op job on `queue`, built as `#[queue_command]` builds one.
fn noop_job(queue: &str) -> Result<NewJob, Error> {
    job_of(noop::NAME, queue)
}

/// A job of `command`, which takes no arguments, on `queue`.
fn job_of(command: &str, queue: &str) -> Result<NewJob, Error> {
    Ok(NewJob::new(command, codec::encode(&())?).queue(queue))
}

fn latency_jobs(jobs: usize) -> usize {
    (jobs / 10).max(1)
}

fn rate(jobs: usize, elapsed: Duration) -> f64 {
    jobs as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn throughput_row(run: Run, queue: String, jobs: usize, elapsed: Duration) -> BenchRow {
    BenchRow {
        run,
        queue,
        jobs,
        elapsed,
        jobs_per_sec: rate(jobs, elapsed),
        per_job: Some(elapsed.div_f64(jobs as f64)),
        latency: None,
    }
}

/// The `pct`th percentile (nearest rank) of sorted, non-empty `values`.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the latency jobs measured, in nanoseconds.
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Counts the benchmark jobs that ran, and notes when the last one expected did.
static TALLY: Tally = Tally {
    seen: AtomicU64::new(0),
    target: AtomicU64::new(u64::MAX),
    finished: Mutex::new(None),
    changed: Condvar::new(),
};

struct Tally {
    seen: AtomicU64,
    target: AtomicU64,
    finished: Mutex<Option<Instant>>,
    changed: Condvar,
}

impl Tally {
    /// Called by each job: only the one that reaches the target takes a lock.
    fn count(&self) {
        let seen = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if seen == self.target.load(Ordering::Relaxed) {
            // read the clock first: the waiter may hold the lock while it draws
            let at = Instant::now();
            *lock(&self.finished) = Some(at);
            self.changed.notify_all();
        }
    }

    /// Expects `target` jobs from now on. Called while no benchmark job runs.
    fn arm(&self, target: u64) {
        *lock(&self.finished) = None;
        self.seen.store(0, Ordering::Relaxed);
        self.target.store(target, Ordering::Relaxed);
    }

    /// Waits for the target, drawing progress; returns when the last job ran.
    fn wait(&self, bar: &ProgressBar) -> Result<Instant, Error> {
        let mut finished = lock(&self.finished);
        let (mut last_seen, mut last_progress) = (0, Instant::now());
        loop {
            if let Some(at) = *finished {
                bar.set_position(self.target.load(Ordering::Relaxed));
                return Ok(at);
            }
            let seen = self.seen.load(Ordering::Relaxed);
            bar.set_position(seen);
            if seen != last_seen {
                (last_seen, last_progress) = (seen, Instant::now());
            } else if last_progress.elapsed() > STALL {
                return Err(Error::backend(format!(
                    "the benchmark stalled: {seen} of {} jobs ran, none in the last {STALL:?}",
                    self.target.load(Ordering::Relaxed)
                )));
            }
            finished = self
                .changed
                .wait_timeout(finished, TICK)
                .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
        }
    }
}

/// A started processor, stopped when this is dropped, errors included.
struct Started<'a>(&'a Processor);

impl<'a> Started<'a> {
    fn new(processor: &'a Processor) -> Self {
        processor.start();
        Self(processor)
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband::MemoryQueue;

    #[test]
    fn every_run_reports_a_rate_and_processes_every_job() {
        let backend = Arc::new(MemoryQueue::new());
        let config = BenchConfig {
            jobs: 200,
            batch: 50,
            threads: vec![1, 2],
            prefetch: vec![3],
            async_threads: vec![1, 2],
            progress: false,
            wait_time: Duration::from_millis(5),
            ..BenchConfig::default()
        };
        let report = run(backend.clone(), &config).unwrap();

        let expected = [
            Run::Enqueue,
            Run::EnqueueMany { batch: 50 },
            Run::Simple,
            Run::Multi {
                threads: 1,
                prefetch: None,
            },
            Run::Multi {
                threads: 2,
                prefetch: None,
            },
            Run::Multi {
                threads: 2,
                prefetch: Some(3),
            },
            Run::AsyncMulti { threads: 1 },
            Run::AsyncMulti { threads: 2 },
            Run::Latency { threads: 2 },
        ];
        assert_eq!(
            report.rows.iter().map(|row| row.run).collect::<Vec<_>>(),
            expected
        );
        for row in &report.rows {
            assert!(
                row.jobs_per_sec.is_finite() && row.jobs_per_sec > 0.0,
                "{row:?}"
            );
            assert!(row.elapsed > Duration::ZERO, "{row:?}");
            assert_eq!(backend.len(&row.queue).unwrap(), 0, "{row:?}");
            let stats = backend.stats(&row.queue).unwrap();
            assert_eq!((stats.running, stats.dead), (0, 0), "{row:?}");
            match row.run {
                Run::Enqueue | Run::EnqueueMany { .. } => {
                    assert_eq!(row.jobs, 200);
                    assert_eq!(stats.done, 0, "{row:?}");
                    assert!(row.per_job.is_some());
                }
                Run::Latency { .. } => {
                    assert_eq!(row.jobs, 20);
                    assert_eq!(stats.done, 20, "{row:?}");
                    let latency = row.latency.unwrap();
                    assert!(latency.p50 <= latency.p99, "{latency:?}");
                }
                _ => {
                    assert_eq!(row.jobs, 200);
                    assert_eq!(stats.done, 200, "{row:?}");
                    assert!(row.per_job.is_some_and(|d| d > Duration::ZERO));
                }
            }
        }
        assert!(report.framework_cost().is_some());

        let table = report.to_string();
        assert_eq!(table.lines().count(), 2 + expected.len(), "{table}");
        assert!(table.contains("| simple processor | 200 |"), "{table}");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn an_empty_config_is_refused() {
        let config = BenchConfig {
            jobs: 0,
            progress: false,
            ..BenchConfig::default()
        };
        assert!(matches!(
            run(Arc::new(MemoryQueue::new()), &config),
            Err(Error::Config(_))
        ));
    }
}
