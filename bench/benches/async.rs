//! Run with: cargo bench -p outband-bench --bench async
//!
//! What async commands and awaited enqueues cost, on Redis (`REDIS_URL`),
//! PostgreSQL (`PG_DATABASE_URL`) and a SQLite file, each in a namespace or
//! table prefix of its own that is deleted at the end:
//!
//! - **sleepers** (Redis and PostgreSQL): `--sleepers` (default 10,000)
//!   async jobs that each sleep 1 s (`tokio::time::sleep`), pre-filled, run
//!   by one multi processor with 1 thread and a concurrency of as many:
//!   the time from the processor's start to the last job's end, and the
//!   process's OS threads at their peak (`Threads:` of `/proc/self/status`,
//!   sampled every millisecond). Beside it, the thread per job: the same jobs
//!   as a sync command that sleeps (`std::thread::sleep`), run by a processor
//!   of `--sync-threads` (default as many as the jobs) threads.
//! - **awaited enqueues** (all three): 64 tasks on a tokio multi-thread
//!   runtime, each awaiting `noop::enqueue().on(&backend)` in a loop,
//!   `--enqueues` (default 20,000) in all; beside the raw ceiling measured in
//!   the same run: on Redis, bare `LPUSH`es one at a time from one client and
//!   pipelines of 64 `LPUSH`es; on SQL, single-row `INSERT` transactions one
//!   at a time from one connection, durable as an enqueue is.
//! - **web endpoint** (Redis and PostgreSQL): an axum server on loopback
//!   whose one endpoint awaits the enqueue, then the same endpoint calling
//!   the sync `enqueue_on` inside `tokio::task::spawn_blocking`; 64 clients
//!   (reqwest, one connection each) send `--requests` (default 20,000)
//!   requests to each: requests/s and the p50 / p99 of a request.
//!
//! Options: `--only sleepers|enqueue|http` (repeatable; default all),
//! `--db redis|postgres|sqlite` (repeatable; default all three, each part
//! on the databases it names above), `--sleepers N`, `--sync-threads N`,
//! `--enqueues N`, `--requests N`. Other arguments, such as cargo's
//! `--bench`, are ignored.

use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use outband::{BaseQueue, MultiProcessor, NewJob, ProcessorConfig, codec, queue_command};
use outband_bench::thousands;
use outband_diesel::DatabaseQueue;
use outband_redis::{RedisOptions, RedisQueue};

type Result<T, E = Box<dyn StdError + Send + Sync>> = std::result::Result<T, E>;

/// The queue of the sleeping jobs, async and sync.
const SLEEP_QUEUE: &str = "outband-async-bench-sleep";

/// The queue the enqueue and web parts fill; nothing consumes it.
const ENQUEUE_QUEUE: &str = "outband-async-bench-enqueue";

/// Concurrent tasks of the enqueue part, and clients of the web part.
const TASKS: usize = 64;

/// Sleeping jobs that have ended, and when the last expected one did.
static SLEPT: AtomicU64 = AtomicU64::new(0);
static SLEEPERS: AtomicU64 = AtomicU64::new(u64::MAX);
static LAST_SLEEPER: Mutex<Option<Instant>> = Mutex::new(None);

fn slept() {
    if SLEPT.fetch_add(1, Ordering::Relaxed) + 1 == SLEEPERS.load(Ordering::Relaxed) {
        *LAST_SLEEPER.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }
}

/// Sleeps 1 s on the processor's async runtime, holding no thread.
#[queue_command(
    name = "outband_bench::async::nap",
    queue = "outband-async-bench-sleep"
)]
async fn nap() {
    tokio::time::sleep(Duration::from_secs(1)).await;
    slept();
}

/// Sleeps 1 s on a processor thread: the thread per job.
#[queue_command(
    name = "outband_bench::async::nap_blocking",
    queue = "outband-async-bench-sleep"
)]
fn nap_blocking() {
    std::thread::sleep(Duration::from_secs(1));
    slept();
}

/// What the enqueue and web parts enqueue; never run.
#[queue_command(
    name = "outband_bench::async::noop",
    queue = "outband-async-bench-enqueue"
)]
async fn noop() {}

struct Options {
    parts: Vec<String>,
    dbs: Vec<String>,
    sleepers: usize,
    sync_threads: Option<usize>,
    enqueues: usize,
    requests: usize,
}

impl Options {
    fn runs(&self, part: &str, db: &str) -> bool {
        (self.parts.is_empty() || self.parts.iter().any(|p| p == part))
            && (self.dbs.is_empty() || self.dbs.iter().any(|d| d == db))
    }
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        parts: Vec::new(),
        dbs: Vec::new(),
        sleepers: 10_000,
        sync_threads: None,
        enqueues: 20_000,
        requests: 20_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if !matches!(
            name.as_str(),
            "--only" | "--db" | "--sleepers" | "--sync-threads" | "--enqueues" | "--requests"
        ) {
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or(format!("{name} needs a value"))?,
        };
        let number = || match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name} needs a positive number, not `{value}`")),
        };
        match name.as_str() {
            "--only" => options.parts.push(value.clone()),
            "--db" => options.dbs.push(value.clone()),
            "--sleepers" => options.sleepers = number()?,
            "--sync-threads" => options.sync_threads = Some(number()?),
            "--enqueues" => options.enqueues = number()?,
            _ => options.requests = number()?,
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!(
                "{message}\nusage: async [--only sleepers|enqueue|http]… [--db redis|postgres|sqlite]… \
                 [--sleepers N] [--sync-threads N] [--enqueues N] [--requests N]"
            );
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for db in ["redis", "postgres", "sqlite"] {
        if !["sleepers", "enqueue", "http"]
            .iter()
            .any(|part| options.runs(part, db))
        {
            continue;
        }
        if let Err(error) = bench_database(db, &options) {
            eprintln!("{db}: benchmark failed: {error}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The backend of `db`, and what its raw ceiling needs: the server's URL,
/// or the SQLite file's path.
enum Db {
    Redis {
        queue: Arc<RedisQueue>,
        url: String,
        namespace: String,
    },
    Sql {
        queue: Arc<DatabaseQueue>,
        url: String,
        prefix: String,
    },
}

impl Db {
    fn open(db: &str) -> Result<Self> {
        let prefix = format!("asyncbench{}_", std::process::id());
        let sql = |url: String| -> Result<Self> {
            let queue = DatabaseQueue::builder(&url)
                .prefix(&prefix)
                .max_connections(8)
                .temporary(true)
                .open()?;
            Ok(Self::Sql {
                queue: Arc::new(queue),
                url,
                prefix: prefix.clone(),
            })
        };
        match db {
            "redis" => {
                let url = std::env::var("REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
                let namespace = format!("outband-async-bench-{}", std::process::id());
                let queue =
                    RedisQueue::with_options(&url, RedisOptions::default().namespace(&namespace))?;
                Ok(Self::Redis {
                    queue: Arc::new(queue),
                    url,
                    namespace,
                })
            }
            "postgres" => sql(std::env::var("PG_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())),
            "sqlite" => {
                let dir = std::env::temp_dir()
                    .join(format!("outband-async-bench-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                sql(format!("sqlite://{}/bench.db", dir.display()))
            }
            other => Err(format!("unknown database `{other}`").into()),
        }
    }

    fn backend(&self) -> Arc<dyn BaseQueue> {
        match self {
            Self::Redis { queue, .. } => queue.clone(),
            Self::Sql { queue, .. } => queue.clone(),
        }
    }

    fn close(&self) {
        if let Self::Redis {
            queue, namespace, ..
        } = self
            && let Err(error) = outband_redis::delete_namespace(queue, namespace)
        {
            eprintln!("could not delete the namespace {namespace}: {error}");
        }
    }
}

fn bench_database(db: &str, options: &Options) -> Result<()> {
    let opened = Db::open(db)?;
    let result = run_parts(db, &opened, options);
    opened.close();
    result
}

fn run_parts(db: &str, opened: &Db, options: &Options) -> Result<()> {
    if db != "sqlite" && options.runs("sleepers", db) {
        sleepers(db, opened, options)?;
    }
    if options.runs("enqueue", db) {
        awaited_enqueues(db, opened, options.enqueues)?;
    }
    if db != "sqlite" && options.runs("http", db) {
        web_endpoint(db, opened, options.requests)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- sleepers

fn threads_now() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the process's thread count every millisecond until dropped;
/// `peak` gives the largest seen, the sampler's own thread included.
struct ThreadPeak {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl ThreadPeak {
    fn start() -> Self {
        let peak = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(threads_now(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Self {
            peak,
            stop,
            sampler: Some(sampler),
        }
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for ThreadPeak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}

struct SleepRun {
    elapsed: Duration,
    peak_threads: usize,
    threads_before: usize,
}

fn sleepers(db: &str, opened: &Db, options: &Options) -> Result<()> {
    let jobs = options.sleepers;
    let backend = opened.backend();
    let asynchronous = sleep_run(&backend, nap::NAME, jobs, |config| {
        config.max_threads(1).concurrency(jobs)
    })?;
    let sync_threads = options.sync_threads.unwrap_or(jobs);
    let blocking = sleep_run(&backend, nap_blocking::NAME, jobs, |config| {
        config.max_threads(sync_threads)
    })?;
    println!("\n{db}: {jobs} jobs that sleep 1 s, pre-filled, one multi processor\n");
    println!("| run | start → last done | OS threads at peak (before start) |");
    println!("|---|---:|---:|");
    println!(
        "| async (`tokio::time::sleep`), 1 thread, concurrency {jobs} | {:.2} s | {} ({}) |",
        asynchronous.elapsed.as_secs_f64(),
        asynchronous.peak_threads,
        asynchronous.threads_before
    );
    println!(
        "| sync (`std::thread::sleep`), {sync_threads} threads | {:.2} s | {} ({}) |",
        blocking.elapsed.as_secs_f64(),
        blocking.peak_threads,
        blocking.threads_before
    );
    Ok(())
}

fn sleep_run(
    backend: &Arc<dyn BaseQueue>,
    command: &str,
    jobs: usize,
    configure: impl FnOnce(ProcessorConfig) -> ProcessorConfig,
) -> Result<SleepRun> {
    let mut sent = 0;
    while sent < jobs {
        let size = 1_000.min(jobs - sent);
        let batch = (0..size)
            .map(|_| Ok(NewJob::new(command, codec::encode(&())?).queue(SLEEP_QUEUE)))
            .collect::<Result<Vec<_>, outband::Error>>()?;
        backend.enqueue_many(batch)?;
        sent += size;
    }
    let config = configure(
        ProcessorConfig::default()
            .queues([SLEEP_QUEUE])
            .wait_time(Duration::from_millis(10)),
    );
    let processor = MultiProcessor::new(backend.clone(), config)?;
    SLEPT.store(0, Ordering::Relaxed);
    SLEEPERS.store(jobs as u64, Ordering::Relaxed);
    *LAST_SLEEPER.lock().unwrap_or_else(PoisonError::into_inner) = None;

    let threads_before = threads_now();
    let peak = ThreadPeak::start();
    let start = Instant::now();
    processor.start();
    let finished = loop {
        if let Some(at) = *LAST_SLEEPER.lock().unwrap_or_else(PoisonError::into_inner) {
            break Ok(at);
        }
        if start.elapsed() > Duration::from_secs(120) {
            break Err(format!(
                "{} of {jobs} sleeping jobs ended in 120 s",
                SLEPT.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let peak_threads = peak.peak();
    drop(peak);
    processor.stop();
    backend.flush(SLEEP_QUEUE)?;
    Ok(SleepRun {
        elapsed: finished?.saturating_duration_since(start),
        // the sampler's own thread is not the processor's
        peak_threads: peak_threads.saturating_sub(1),
        threads_before,
    })
}

// ---------------------------------------------------------- awaited enqueue

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn awaited_enqueues(db: &str, opened: &Db, jobs: usize) -> Result<()> {
    let (ceilings, rate) = match opened {
        Db::Redis { queue, url, .. } => {
            let one = lpush_rate(url, jobs, 1)?;
            let rate = enqueue_rate(queue, jobs)?;
            let piped = lpush_rate(url, jobs, TASKS)?;
            (
                vec![
                    ("bare `LPUSH`, one at a time, one client", one),
                    ("bare `LPUSH`, pipelines of 64, one client", piped),
                ],
                rate,
            )
        }
        Db::Sql {
            queue, url, prefix, ..
        } => {
            let raw = insert_rate(url, prefix, jobs)?;
            let rate = enqueue_rate(queue, jobs)?;
            (
                vec![("raw single-row `INSERT` transactions, one connection", raw)],
                rate,
            )
        }
    };
    println!("\n{db}: awaited enqueues, {TASKS} tasks, {jobs} jobs\n");
    println!("| run | jobs/s |");
    println!("|---|---:|");
    println!(
        "| `noop::enqueue().on(&backend).await`, {TASKS} tasks | {} |",
        thousands(rate)
    );
    for (name, ceiling) in ceilings {
        println!("| {name} (ceiling) | {} |", thousands(ceiling));
    }
    Ok(())
}

/// Jobs a second that `TASKS` tasks enqueue by awaiting, `jobs` in all.
fn enqueue_rate<B: BaseQueue + 'static>(backend: &Arc<B>, jobs: usize) -> Result<f64> {
    let rt = runtime()?;
    let left = Arc::new(AtomicUsize::new(jobs));
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (backend, left) = (backend.clone(), left.clone());
                tokio::spawn(async move {
                    while left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        noop::enqueue().on(&backend).await?;
                    }
                    Ok::<_, outband::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok::<_, Box<dyn StdError + Send + Sync>>(start.elapsed())
    })?;
    let stored = backend.len(ENQUEUE_QUEUE)?;
    backend.flush(ENQUEUE_QUEUE)?;
    if stored != jobs as u64 {
        return Err(format!("enqueued {jobs} jobs, but the queue held {stored}").into());
    }
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

/// `LPUSH`es a second from one client, `pipeline` per round trip.
fn lpush_rate(url: &str, jobs: usize, pipeline: usize) -> Result<f64> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let key = format!("outband-async-bench-{}-lpush", std::process::id());
    let start = Instant::now();
    let mut sent = 0;
    while sent < jobs {
        let size = pipeline.min(jobs - sent);
        let mut pipe = redis::pipe();
        for _ in 0..size {
            pipe.cmd("LPUSH").arg(&key).arg(b"x").ignore();
        }
        pipe.query::<()>(&mut conn)?;
        sent += size;
    }
    let elapsed = start.elapsed();
    redis::cmd("DEL").arg(&key).query::<()>(&mut conn)?;
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

/// Single-row `INSERT` transactions a second from one connection, in a
/// table of its own, durable as an enqueue is (`synchronous_commit` on in
/// PostgreSQL; SQLite in WAL mode with `synchronous = NORMAL`, as the
/// backend sets it).
fn insert_rate(url: &str, prefix: &str, jobs: usize) -> Result<f64> {
    let table = format!("{prefix}raw_insert");
    if url.starts_with("sqlite://") {
        let path = url.trim_start_matches("sqlite://").to_owned() + "-raw";
        let mut conn = diesel::SqliteConnection::establish(&path)?;
        conn.batch_execute(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             CREATE TABLE {table} (id INTEGER PRIMARY KEY, args BLOB NOT NULL)"
        ))?;
        let rate = insert_loop(&mut conn, &table, jobs)?;
        drop(conn);
        let _ = std::fs::remove_file(&path);
        return Ok(rate);
    }
    let mut conn = diesel::PgConnection::establish(url)?;
    conn.batch_execute(&format!(
        "SET synchronous_commit TO ON; \
         CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, args BYTEA NOT NULL)"
    ))?;
    let rate = insert_loop(&mut conn, &table, jobs);
    conn.batch_execute(&format!("DROP TABLE {table}"))?;
    rate
}

fn insert_loop(conn: &mut impl Connection, table: &str, jobs: usize) -> Result<f64> {
    let statement = format!("INSERT INTO {table} (args) VALUES ('x')");
    let start = Instant::now();
    for _ in 0..jobs {
        conn.transaction(|conn| conn.batch_execute(&statement))?;
    }
    Ok(jobs as f64 / start.elapsed().as_secs_f64())
}

// ------------------------------------------------------------ web endpoint

struct HttpRun {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn web_endpoint(db: &str, opened: &Db, requests: usize) -> Result<()> {
    let backend = opened.backend();
    let awaited = http_run(&backend, requests, false)?;
    let blocking = http_run(&backend, requests, true)?;
    println!("\n{db}: axum endpoint that enqueues, {TASKS} clients, {requests} requests\n");
    println!("| endpoint | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, run) in [
        ("`noop::enqueue().on(&backend).await`", awaited),
        (
            "`spawn_blocking(move || noop::enqueue_on(&*backend))`",
            blocking,
        ),
    ] {
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms |",
            thousands(run.per_sec),
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn http_run(backend: &Arc<dyn BaseQueue>, requests: usize, blocking: bool) -> Result<HttpRun> {
    use axum::http::StatusCode;

    let server = runtime()?;
    let app = {
        let backend = backend.clone();
        axum::Router::new().route(
            "/enqueue",
            axum::routing::post(move || {
                let backend = backend.clone();
                async move {
                    let sent = if blocking {
                        tokio::task::spawn_blocking(move || noop::enqueue_on(&*backend))
                            .await
                            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                    } else {
                        noop::enqueue().on(&backend).await.map(|job| job.id())
                    };
                    sent.map(|_| StatusCode::OK)
                        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
                }
            }),
        )
    };
    let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let address = listener.local_addr()?;
    server.spawn(async move { axum::serve(listener, app).await });

    let clients = runtime()?;
    let left = Arc::new(AtomicUsize::new(requests));
    let url = format!("http://{address}/enqueue");
    let (elapsed, mut latencies) = clients.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (left, url) = (left.clone(), url.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut latencies = Vec::new();
                    while left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        let sent = Instant::now();
                        let response = client.post(&url).send().await?;
                        if response.status() != StatusCode::OK {
                            return Err(
                                format!("the endpoint answered {}", response.status()).into()
                            );
                        }
                        latencies.push(sent.elapsed());
                    }
                    Ok::<_, Box<dyn StdError + Send + Sync>>(latencies)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(requests);
        for task in tasks {
            all.extend(task.await??);
        }
        Ok::<_, Box<dyn StdError + Send + Sync>>((start.elapsed(), all))
    })?;
    drop(clients);
    drop(server);
    let stored = backend.len(ENQUEUE_QUEUE)?;
    backend.flush(ENQUEUE_QUEUE)?;
    if stored != requests as u64 {
        return Err(format!("{requests} requests, but the queue held {stored} jobs").into());
    }
    latencies.sort_unstable();
    Ok(HttpRun {
        per_sec: requests as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
    })
}

/// The `pct`th percentile (nearest rank) of sorted, non-empty `values`.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}
