//! Run with: cargo bench --manifest-path bench/peers/Cargo.toml -- [--rounds N] [--jobs N] [--only redis|postgres]
//!
//! outband beside apalis 1.x, each at its defaults, processing no-op jobs on
//! Redis and on PostgreSQL with 1 and with 4 workers, side by side in one
//! run, each beside the raw ceiling of its backend.
//!
//! # What one measurement is
//!
//! `--jobs` (default 20,000) no-op jobs are enqueued before the consumer
//! exists; then the consumer is started and runs them all. Each job's body
//! only counts itself, the same counter for both frameworks, and notes the
//! time of the first and the last job to run. Two rates come of it:
//!
//! - **jobs/s**, the rate the issue asks for: `jobs − 1` over the time from
//!   the first job's completion to the last one's, so that neither
//!   framework's start-up (connecting, registering a worker, starting
//!   threads) counts;
//! - **from start**: `jobs` over the time from the consumer's start to the
//!   last job's completion, start-up included.
//!
//! A job counts as completed when its body has run, as in `outband-bench`:
//! the acknowledgements that follow are batched by both frameworks, and
//! only the last ones fall outside the measured time. Every run is checked
//! afterwards: the backend must report every job done and none left, or the
//! bench fails.
//!
//! # The two consumers
//!
//! - **outband**: a [`MultiProcessor`] at `ProcessorConfig::default()` with
//!   `max_threads` = the worker count, over `RedisQueue` (its default
//!   options, in a namespace of its own) or `DatabaseQueue` (its default
//!   builder, with tables of its own prefix), running a `#[queue_command]`
//!   fn of the queue it serves by default. Not `outband-bench`'s own no-op
//!   and `run_one`: they time from the processor's start only, where the
//!   issue's rate starts at the first completion.
//! - **apalis**: one worker, `WorkerBuilder::new(…).backend(storage)
//!   .concurrency(workers).build(handler)`, with an `async fn` handler, the
//!   storage at its default `Config` but for the queue name (`RedisStorage`
//!   over `apalis_redis::connect`, `PostgresStorage` over `PgPool::connect`),
//!   on a multi-threaded tokio runtime with its default worker threads, as
//!   `#[tokio::main]` builds it. `concurrency` is how an apalis user asks one
//!   worker to run that many jobs at once; that is the worker count here.
//!
//! # The raw ceilings
//!
//! - **Redis**: bare `LPUSH`es, one round trip at a time from one client
//!   (as `redis-benchmark -t lpush -c 1`), `--jobs` of them.
//! - **PostgreSQL**: `--jobs` rows of a plain table claimed and deleted from
//!   4 connections at once, each row by one transaction of
//!   `SELECT … ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED` then `DELETE`,
//!   with `synchronous_commit` off (as outband's claims commit), statements
//!   prepared once per connection: the approach of outband-diesel's
//!   `databases` bench.
//!
//! # The protocol
//!
//! For each backend, for each worker count in {1, 4}, for each of `--rounds`
//! rounds (default 3): both frameworks' queues are filled, the raw ceiling
//! is measured, then apalis and outband run, in turn, apalis first in odd
//! rounds and outband first in even ones, so that both meet the same minute
//! of a shared machine and neither always goes first. On PostgreSQL the
//! finished jobs of both are deleted after each round and both tables get
//! `VACUUM ANALYZE` once filled (apalis's only when its schema is this
//! run's: see below), so every round starts from the same tables.
//! The table gives every round and, per backend and worker count, the
//! median of the rounds (of each column on its own).
//!
//! On Redis, apalis's jobs are moved from its scheduled set to its active
//! list once pushed, untimed: apalis-redis 1.0.0 puts every pushed job in
//! the scheduled set and its worker fails at its first fetch on a backlog
//! of more than about 8,000 (see `RedisSide::promote`).
//!
//! # What it touches
//!
//! Redis at `REDIS_URL` (default `redis://127.0.0.1:6379/`): keys under
//! `outband-peers-<pid>`, both frameworks', all deleted at the end.
//! PostgreSQL at `PG_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`): outband's tables of the prefix
//! `peers<pid>_`, dropped at the end (diesel's `__diesel_schema_migrations`,
//! which every outband user of the database shares, is created if missing
//! and keeps none of this run's rows); apalis's schema `apalis`, which its
//! migrations create with the extensions `pgcrypto` and `hstore`. When the
//! schema did not exist before, it is dropped at the end, and so are the
//! extensions this run created; when it did, only this run's jobs and
//! workers are deleted from it.
//!
//! Options: `--rounds N`, `--jobs N`, `--only redis|postgres`. Other
//! arguments, such as the `--bench` that `cargo bench` passes, are ignored.

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_postgres::{PgPool, PostgresStorage};
use apalis_redis::{ConnectionManager, RedisStorage};
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Text, Untyped};
use diesel::{Connection, PgConnection, QueryResult, QueryableByName, RunQueryDsl};
use outband::{BaseQueue, MultiProcessor, NewJob, ProcessorConfig, queue_command};
use outband_bench::thousands;
use outband_diesel::DatabaseQueue;
use outband_redis::{RedisOptions, RedisQueue};
use serde::{Deserialize, Serialize};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// The queue outband's no-op command names, which its processor serves by
/// default. The backends' namespace and table prefix keep it apart from
/// anyone else's.
const QUEUE: &str = "outband-peers";

/// outband's no-op job: counts itself.
#[queue_command(name = "outband_peers::noop", queue = "outband-peers")]
fn noop() {
    TALLY.count();
}

/// apalis's no-op job's arguments: none (JSON `null`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Noop;

/// apalis's no-op job: counts itself.
async fn apalis_noop(_: Noop) {
    TALLY.count();
}

// ---------------------------------------------------------------- options

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    Redis,
    Postgres,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redis => "Redis",
            Self::Postgres => "PostgreSQL",
        })
    }
}

struct Options {
    rounds: usize,
    jobs: usize,
    stores: Vec<Store>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        rounds: 3,
        jobs: 20_000,
        stores: vec![Store::Redis, Store::Postgres],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if !matches!(arg.as_str(), "--rounds" | "--jobs" | "--only") {
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{arg} {value}: not a positive number"))
        };
        match arg.as_str() {
            "--rounds" => options.rounds = number()?,
            "--jobs" => options.jobs = number()?.max(2),
            _ => {
                options.stores = vec![match value.as_str() {
                    "redis" => Store::Redis,
                    "postgres" => Store::Postgres,
                    _ => return Err(format!("--only {value}: redis or postgres")),
                }];
            }
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\nusage: peers [--rounds N] [--jobs N] [--only redis|postgres]");
            return ExitCode::from(2);
        }
    };
    // apalis's runtime, as `#[tokio::main]` builds it
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for &store in &options.stores {
        let result = match store {
            Store::Redis => bench_redis(&runtime, &options, &mut rows),
            Store::Postgres => bench_postgres(&runtime, &options, &mut rows),
        };
        if let Err(error) = result {
            eprintln!("{store}: benchmark failed: {error}");
            failed = true;
        }
    }
    print_table(&options, &rows);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

// ---------------------------------------------------------------- the runs

/// One framework's run: its two rates.
#[derive(Clone, Copy, Debug)]
struct Rates {
    /// `jobs − 1` over first completion → last completion.
    steady: f64,
    /// `jobs` over consumer start → last completion.
    from_start: f64,
}

/// One round of one backend and worker count.
struct Row {
    store: Store,
    workers: usize,
    round: usize,
    ceiling: f64,
    apalis: Rates,
    outband: Rates,
}

/// What a backend gives the rounds: its two consumers, filled and run one
/// at a time, and its raw ceiling.
trait Side {
    /// Enqueues `jobs` no-op jobs for apalis's run `run` and for outband's.
    fn fill(&mut self, run: &str, jobs: usize) -> BoxResult<()>;
    /// The raw ceiling, in operations a second.
    fn ceiling(&mut self, jobs: usize) -> BoxResult<f64>;
    /// Runs apalis's jobs of `run` with `workers`, and checks them done.
    fn apalis(&mut self, run: &str, jobs: usize, workers: usize) -> BoxResult<Rates>;
    /// Runs outband's jobs with `workers` threads, and checks them done.
    fn outband(&mut self, jobs: usize, workers: usize) -> BoxResult<Rates>;
    /// Clears what the two runs of `run` left, once both ran.
    fn clean(&mut self, run: &str) -> BoxResult<()>;
}

fn rounds(
    store: Store,
    side: &mut dyn Side,
    options: &Options,
    rows: &mut Vec<Row>,
) -> BoxResult<()> {
    let jobs = options.jobs;
    for workers in [1, 4] {
        for round in 1..=options.rounds {
            let run = format!("w{workers}-r{round}");
            side.fill(&run, jobs)?;
            let ceiling = side.ceiling(jobs)?;
            let (apalis, outband) = if round % 2 == 1 {
                let apalis = side.apalis(&run, jobs, workers)?;
                (apalis, side.outband(jobs, workers)?)
            } else {
                let outband = side.outband(jobs, workers)?;
                (side.apalis(&run, jobs, workers)?, outband)
            };
            side.clean(&run)?;
            eprintln!(
                "{store}, {workers} worker(s), round {round}: apalis {} jobs/s, outband {} jobs/s \
                 ({:.2}×), raw ceiling {}/s",
                thousands(apalis.steady),
                thousands(outband.steady),
                outband.steady / apalis.steady,
                thousands(ceiling),
            );
            rows.push(Row {
                store,
                workers,
                round,
                ceiling,
                apalis,
                outband,
            });
        }
    }
    Ok(())
}

/// What stops apalis's worker: the tally reaching its target.
type Signal = Pin<Box<dyn Future<Output = Result<(), WorkerError>> + Send>>;

/// Runs the apalis worker that `worker` starts, handing it the signal to
/// stop on, until the tally reaches `jobs`.
fn run_apalis<F, Fut>(runtime: &tokio::runtime::Runtime, jobs: usize, worker: F) -> BoxResult<Rates>
where
    F: FnOnce(Signal) -> Fut,
    Fut: Future<Output = Result<(), WorkerError>>,
{
    TALLY.arm(jobs);
    let finished = Arc::new(Mutex::new(None));
    let waited = Arc::clone(&finished);
    let signal: Signal = Box::pin(async move {
        let outcome = tokio::task::spawn_blocking(|| TALLY.wait()).await;
        *lock(&waited) = Some(outcome.unwrap_or_else(|e| Err(e.to_string())));
        Ok(())
    });
    let start = Instant::now();
    let ran = runtime.block_on(worker(signal));
    TALLY.abandon();
    ran.map_err(|e| format!("apalis's worker failed: {e}"))?;
    let times = lock(&finished)
        .take()
        .ok_or("apalis's worker stopped before its jobs ran")??;
    Ok(times.rates(start, jobs))
}

/// Starts outband's multi processor with `workers` threads and runs it
/// until the tally reaches `jobs`.
fn run_outband<Q: BaseQueue + 'static>(
    backend: &Arc<Q>,
    jobs: usize,
    workers: usize,
) -> BoxResult<Rates> {
    let before = backend.stats(QUEUE)?.done;
    let processor = MultiProcessor::new(
        Arc::clone(backend) as Arc<dyn BaseQueue>,
        ProcessorConfig::default().max_threads(workers),
    )?;
    TALLY.arm(jobs);
    let start = Instant::now();
    processor.start();
    let finished = TALLY.wait();
    processor.stop();
    let times = finished?;
    let stats = backend.stats(QUEUE)?;
    let done = stats.done.saturating_sub(before);
    if done != jobs as u64 || stats.pending != 0 || stats.running != 0 {
        return Err(format!(
            "outband: of {jobs} jobs, {done} ended done, {} are pending and {} running",
            stats.pending, stats.running
        )
        .into());
    }
    Ok(times.rates(start, jobs))
}

/// Waits up to `limit` for `check` to return `jobs`, the last
/// acknowledgements being written after the run; fails with what it saw.
fn await_done(
    what: &str,
    jobs: usize,
    limit: Duration,
    mut check: impl FnMut() -> BoxResult<(u64, u64)>,
) -> BoxResult<()> {
    let start = Instant::now();
    loop {
        let (done, left) = check()?;
        if done == jobs as u64 && left == 0 {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(
                format!("{what}: of {jobs} jobs, {done} ended done and {left} are left").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn outband_jobs(jobs: usize) -> BoxResult<Vec<NewJob>> {
    let args = outband::codec::encode(&())?;
    Ok((0..jobs)
        .map(|_| NewJob::new(noop::NAME, args.clone()).queue(QUEUE))
        .collect())
}

fn fill_outband(backend: &dyn BaseQueue, jobs: usize) -> BoxResult<()> {
    if backend.len(QUEUE)? != 0 {
        return Err(format!("outband's queue `{QUEUE}` is not empty").into());
    }
    let mut left = jobs;
    while left > 0 {
        let size = left.min(1_000);
        backend.enqueue_many(outband_jobs(size)?)?;
        left -= size;
    }
    Ok(())
}

// ---------------------------------------------------------------- Redis

struct RedisSide<'a> {
    runtime: &'a tokio::runtime::Runtime,
    namespace: String,
    outband: Arc<RedisQueue>,
    apalis: ConnectionManager,
}

impl RedisSide<'_> {
    fn apalis_config(&self, run: &str) -> apalis_redis::Config {
        apalis_redis::Config::default().queue(format!("{}:apalis-{run}", self.namespace))
    }

    /// Moves apalis's pushed jobs of `run` from its scheduled set to its
    /// active list, 1,000 at a time, as its first fetch would move them all
    /// at once.
    ///
    /// apalis-redis 1.0.0 stores every pushed job in the scheduled set, due
    /// at the time of the push, and each fetch promotes every due job with
    /// one Lua `unpack`, which fails past Lua's limit of about 8,000 values
    /// (`too many results to unpack`): a worker started on a backlog of
    /// 20,000 fails at its first fetch. The move is not timed; the first
    /// completion, where the rate starts, would come after it anyway.
    fn promote(&self, run: &str) -> BoxResult<()> {
        let config = self.apalis_config(run);
        let (scheduled, active) = (config.scheduled_jobs_set(), config.active_jobs_list());
        loop {
            let ids: Vec<String> = outband_redis::with_connection(&self.outband, |con| {
                redis::cmd("ZRANGE")
                    .arg(&scheduled)
                    .arg(0)
                    .arg(999)
                    .query(con)
            })?;
            if ids.is_empty() {
                return Ok(());
            }
            outband_redis::with_connection(&self.outband, |con| {
                redis::pipe()
                    .atomic()
                    .cmd("RPUSH")
                    .arg(&active)
                    .arg(&ids)
                    .ignore()
                    .cmd("ZREM")
                    .arg(&scheduled)
                    .arg(&ids)
                    .ignore()
                    .query::<()>(con)
            })?;
        }
    }
}

fn bench_redis(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
    rows: &mut Vec<Row>,
) -> BoxResult<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let namespace = format!("outband-peers-{}", std::process::id());
    let outband = Arc::new(RedisQueue::with_options(
        &url,
        RedisOptions::default().namespace(&namespace),
    )?);
    let apalis = runtime.block_on(apalis_redis::connect(url.as_str()))?;
    let mut side = RedisSide {
        runtime,
        namespace,
        outband,
        apalis,
    };
    let result = rounds(Store::Redis, &mut side, options, rows);
    // apalis's keys are `<namespace>:…` too
    if let Err(error) = outband_redis::delete_namespace(&side.outband, &side.namespace) {
        eprintln!(
            "could not delete the Redis keys of {}: {error}",
            side.namespace
        );
    }
    result
}

impl Side for RedisSide<'_> {
    fn fill(&mut self, run: &str, jobs: usize) -> BoxResult<()> {
        let mut storage =
            RedisStorage::<Noop>::new(self.apalis.clone()).with_config(self.apalis_config(run));
        let mut left = jobs;
        while left > 0 {
            let size = left.min(1_000);
            self.runtime.block_on(storage.push_bulk(vec![Noop; size]))?;
            left -= size;
        }
        self.promote(run)?;
        fill_outband(&*self.outband, jobs)
    }

    fn ceiling(&mut self, jobs: usize) -> BoxResult<f64> {
        let key = format!("{}:lpush", self.namespace);
        let start = Instant::now();
        for _ in 0..jobs {
            outband_redis::with_connection(&self.outband, |con| {
                redis::cmd("LPUSH").arg(&key).arg("x").query::<i64>(con)
            })?;
        }
        let rate = jobs as f64 / start.elapsed().as_secs_f64();
        outband_redis::with_connection(&self.outband, |con| {
            redis::cmd("DEL").arg(&key).query::<i64>(con)
        })?;
        Ok(rate)
    }

    fn apalis(&mut self, run: &str, jobs: usize, workers: usize) -> BoxResult<Rates> {
        let config = self.apalis_config(run);
        let storage = RedisStorage::<Noop>::new(self.apalis.clone()).with_config(config.clone());
        let name = format!("{}-{run}", self.namespace);
        let rates = run_apalis(self.runtime, jobs, |signal| {
            WorkerBuilder::new(name)
                .backend(storage)
                .concurrency(workers)
                .build(apalis_noop)
                .run_until(signal)
        })?;
        let outband = &self.outband;
        await_done("apalis", jobs, Duration::from_secs(10), || {
            let counts = outband_redis::with_connection(outband, |con| {
                redis::pipe()
                    .cmd("SCARD")
                    .arg(config.done_jobs_set())
                    .cmd("LLEN")
                    .arg(config.active_jobs_list())
                    .query::<(u64, u64)>(con)
            })?;
            Ok(counts)
        })?;
        Ok(rates)
    }

    fn outband(&mut self, jobs: usize, workers: usize) -> BoxResult<Rates> {
        run_outband(&self.outband, jobs, workers)
    }

    fn clean(&mut self, _run: &str) -> BoxResult<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// apalis's schema and the extensions its migrations create.
const APALIS_SCHEMA: &str = "apalis";
const APALIS_EXTENSIONS: [&str; 2] = ["pgcrypto", "hstore"];

struct PgSide<'a> {
    runtime: &'a tokio::runtime::Runtime,
    url: String,
    /// Of outband's tables, and of apalis's queues and workers.
    prefix: String,
    outband: Arc<DatabaseQueue>,
    apalis: PgPool,
    /// Whether the schema `apalis` is this run's, to vacuum and drop.
    owns_schema: bool,
    admin: PgConnection,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn bench_postgres(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
    rows: &mut Vec<Row>,
) -> BoxResult<()> {
    let url = std::env::var("PG_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let prefix = format!("peers{}_", std::process::id());
    let mut admin = PgConnection::establish(&url)?;
    let owns_schema = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_namespace WHERE nspname = '{APALIS_SCHEMA}'"
    ))
    .get_result::<Count>(&mut admin)?
    .n == 0;
    let had: Vec<String> = diesel::sql_query("SELECT extname AS name FROM pg_extension")
        .load::<Name>(&mut admin)?
        .into_iter()
        .map(|row| row.name)
        .collect();

    let outband = Arc::new(
        DatabaseQueue::builder(&url)
            .prefix(&prefix)
            .temporary(true)
            .open()?,
    );
    let apalis = runtime.block_on(async {
        let pool = PgPool::connect(&url).await?;
        PostgresStorage::setup(&pool).await?;
        Ok::<_, Box<dyn Error>>(pool)
    });
    let apalis = match apalis {
        Ok(pool) => pool,
        Err(error) => {
            if owns_schema {
                drop_apalis_schema(&mut admin, &had)?;
            }
            return Err(format!("apalis's storage: {error}").into());
        }
    };
    let mut side = PgSide {
        runtime,
        url,
        prefix,
        outband,
        apalis,
        owns_schema,
        admin,
    };
    let result = rounds(Store::Postgres, &mut side, options, rows);
    if let Err(error) = side.tear_down(&had) {
        eprintln!("PostgreSQL: could not clean up: {error}");
    }
    result
}

impl PgSide<'_> {
    fn apalis_queue(&self, run: &str) -> String {
        format!("{}apalis_{run}", self.prefix)
    }

    /// Closes both consumers' connections (outband's tables are dropped
    /// with its last handle); then drops the schema `apalis` with the
    /// extensions this run created when the schema is this run's, or else
    /// deletes this run's jobs and workers from it.
    fn tear_down(mut self, had: &[String]) -> BoxResult<()> {
        drop(self.outband);
        self.runtime.block_on(self.apalis.close());
        if self.owns_schema {
            drop_apalis_schema(&mut self.admin, had)
        } else {
            self.admin.batch_execute(&format!(
                "DELETE FROM {APALIS_SCHEMA}.jobs WHERE job_type LIKE '{0}%'; \
                 DELETE FROM {APALIS_SCHEMA}.workers WHERE id LIKE '{0}%'",
                self.prefix
            ))?;
            Ok(())
        }
    }
}

/// Drops the schema `apalis`, and those of apalis's extensions that were
/// not in `had`: only when this run created the schema. An extension that
/// something else has come to depend on since stays.
fn drop_apalis_schema(admin: &mut PgConnection, had: &[String]) -> BoxResult<()> {
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {APALIS_SCHEMA} CASCADE"))?;
    for extension in APALIS_EXTENSIONS {
        if !had.iter().any(|name| name == extension)
            && let Err(error) =
                admin.batch_execute(&format!("DROP EXTENSION IF EXISTS {extension}"))
        {
            eprintln!("PostgreSQL: kept the extension {extension}: {error}");
        }
    }
    Ok(())
}

impl Side for PgSide<'_> {
    fn fill(&mut self, run: &str, jobs: usize) -> BoxResult<()> {
        let config = apalis_postgres::Config::default().queue(self.apalis_queue(run));
        let mut storage = PostgresStorage::<Noop>::new(&self.apalis).with_config(config);
        let mut left = jobs;
        while left > 0 {
            let size = left.min(1_000);
            self.runtime.block_on(storage.push_bulk(vec![Noop; size]))?;
            left -= size;
        }
        fill_outband(&*self.outband, jobs)?;
        let mut tables = format!("{0}jobs, {0}done", self.prefix);
        if self.owns_schema {
            tables.push_str(&format!(", {APALIS_SCHEMA}.jobs"));
        }
        self.admin
            .batch_execute(&format!("VACUUM ANALYZE {tables}"))?;
        Ok(())
    }

    fn ceiling(&mut self, jobs: usize) -> BoxResult<f64> {
        raw_claims(&self.url, &format!("{}raw_jobs", self.prefix), jobs, 4)
    }

    fn apalis(&mut self, run: &str, jobs: usize, workers: usize) -> BoxResult<Rates> {
        let queue = self.apalis_queue(run);
        let config = apalis_postgres::Config::default().queue(queue.clone());
        let storage = PostgresStorage::<Noop>::new(&self.apalis).with_config(config);
        let rates = run_apalis(self.runtime, jobs, |signal| {
            WorkerBuilder::new(queue.as_str())
                .backend(storage)
                .concurrency(workers)
                .build(apalis_noop)
                .run_until(signal)
        })?;
        let admin = &mut self.admin;
        await_done("apalis", jobs, Duration::from_secs(10), || {
            let count = |status: &str, admin: &mut PgConnection| {
                diesel::sql_query(format!(
                    "SELECT count(*) AS n FROM {APALIS_SCHEMA}.jobs \
                     WHERE job_type = '{queue}' AND status {status}"
                ))
                .get_result::<Count>(admin)
                .map(|row| row.n as u64)
            };
            Ok((count("= 'Done'", admin)?, count("<> 'Done'", admin)?))
        })?;
        Ok(rates)
    }

    fn outband(&mut self, jobs: usize, workers: usize) -> BoxResult<Rates> {
        run_outband(&self.outband, jobs, workers)
    }

    fn clean(&mut self, run: &str) -> BoxResult<()> {
        self.outband.purge(Duration::ZERO)?;
        self.admin.batch_execute(&format!(
            "DELETE FROM {APALIS_SCHEMA}.jobs WHERE job_type = '{}'",
            self.apalis_queue(run)
        ))?;
        Ok(())
    }
}

/// A fixed statement with at most one bigint bind after `head`, which
/// diesel prepares once per connection and keeps in its statement cache:
/// `diesel::sql_query` would be prepared again on every call.
struct Cached<'a> {
    head: &'a str,
    bind: Option<i64>,
}

impl QueryId for Cached<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Cached<'_> {
    type SqlType = Untyped;
}

impl<C> RunQueryDsl<C> for Cached<'_> {}

impl QueryFragment<Pg> for Cached<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(self.head);
        if let Some(value) = &self.bind {
            out.push_bind_param::<BigInt, i64>(value)?;
        }
        Ok(())
    }
}

/// A row a raw claim took.
#[derive(QueryableByName)]
struct Picked {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    #[allow(dead_code)] // read, as a consumer reads its payload
    payload: String,
}

/// Claims and deletes `rows` rows of a fresh `table`, one row per
/// transaction, from `clients` connections at once; returns rows a second.
fn raw_claims(url: &str, table: &str, rows: usize, clients: usize) -> BoxResult<f64> {
    let mut fill = PgConnection::establish(url)?;
    fill.batch_execute(&format!(
        "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"
    ))?;
    let result = (|| -> BoxResult<f64> {
        let mut left = rows;
        while left > 0 {
            let size = left.min(1_000);
            fill.batch_execute(&format!(
                "INSERT INTO {table} (payload) VALUES {}",
                vec!["('x')"; size].join(", ")
            ))?;
            left -= size;
        }
        // the planner then knows the table, as it knows the queues'
        fill.batch_execute(&format!("ANALYZE {table}"))?;
        let pick =
            format!("SELECT id, payload FROM {table} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED");
        let delete = format!("DELETE FROM {table} WHERE id = ");
        let mut conns = (0..clients)
            .map(|_| {
                let mut conn = PgConnection::establish(url)?;
                conn.batch_execute("SET synchronous_commit TO OFF")?;
                Ok(conn)
            })
            .collect::<BoxResult<Vec<_>>>()?;
        // while rows are left, a client finds one that no other holds, so
        // every transaction deletes a row
        let shares: Vec<usize> = (0..clients)
            .map(|i| rows / clients + usize::from(i < rows % clients))
            .collect();
        let start = Instant::now();
        let claimed = std::thread::scope(|scope| {
            let threads: Vec<_> = conns
                .iter_mut()
                .zip(&shares)
                .map(|(conn, &share)| {
                    let (pick, delete) = (&pick, &delete);
                    scope.spawn(move || -> QueryResult<usize> {
                        let mut taken = 0;
                        for _ in 0..share {
                            taken += claim_one(conn, pick, delete)?;
                        }
                        Ok(taken)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err(diesel::result::Error::RollbackTransaction))
                })
                .sum::<QueryResult<usize>>()
        });
        let elapsed = start.elapsed();
        let claimed = claimed?;
        if claimed != rows {
            return Err(format!("{clients} raw clients claimed {claimed} of {rows} rows").into());
        }
        Ok(rows as f64 / elapsed.as_secs_f64())
    })();
    fill.batch_execute(&format!("DROP TABLE {table}"))?;
    result
}

/// One transaction: the first row no other transaction holds, then its
/// delete. Returns how many rows it took.
fn claim_one(conn: &mut PgConnection, pick: &str, delete: &str) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let picked = Cached {
            head: pick,
            bind: None,
        }
        .load::<Picked>(conn)?;
        let Some(row) = picked.into_iter().next() else {
            return Ok(0);
        };
        Cached {
            head: delete,
            bind: Some(row.id),
        }
        .execute(conn)
    })
}

// ---------------------------------------------------------------- the tally

/// When the first and the last job of a run completed.
struct Finish {
    first: Instant,
    last: Instant,
}

impl Finish {
    fn rates(&self, start: Instant, jobs: usize) -> Rates {
        let seconds = |from: Instant| self.last.saturating_duration_since(from).as_secs_f64();
        Rates {
            steady: (jobs - 1) as f64 / seconds(self.first).max(1e-9),
            from_start: jobs as f64 / seconds(start).max(1e-9),
        }
    }
}

/// A run that sees no job complete for this long has stalled.
const STALL: Duration = Duration::from_secs(60);

/// Counts the jobs that ran, noting when the first and the last one did.
static TALLY: Tally = Tally {
    seen: AtomicU64::new(0),
    target: AtomicU64::new(u64::MAX),
    state: Mutex::new(TallyState {
        first: None,
        last: None,
        abandoned: false,
    }),
    changed: Condvar::new(),
};

struct Tally {
    seen: AtomicU64,
    target: AtomicU64,
    state: Mutex<TallyState>,
    changed: Condvar,
}

struct TallyState {
    first: Option<Instant>,
    last: Option<Instant>,
    abandoned: bool,
}

impl Tally {
    /// Called by each job: only the first and the last take the lock.
    fn count(&self) {
        let seen = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let target = self.target.load(Ordering::Relaxed);
        if seen == 1 || seen == target {
            let at = Instant::now();
            let mut state = lock(&self.state);
            if seen == 1 {
                state.first = Some(at);
            }
            if seen == target {
                state.last = Some(at);
                self.changed.notify_all();
            }
        }
    }

    /// Expects `jobs` jobs from now on. Called while no job runs.
    fn arm(&self, jobs: usize) {
        let mut state = lock(&self.state);
        *state = TallyState {
            first: None,
            last: None,
            abandoned: false,
        };
        self.seen.store(0, Ordering::Relaxed);
        self.target.store(jobs as u64, Ordering::Relaxed);
    }

    /// Releases a waiter that is no longer needed.
    fn abandon(&self) {
        lock(&self.state).abandoned = true;
        self.changed.notify_all();
    }

    /// Waits for the target; fails when no job completed for [`STALL`].
    fn wait(&self) -> Result<Finish, String> {
        let mut state = lock(&self.state);
        let (mut last_seen, mut last_progress) = (0, Instant::now());
        loop {
            if let (Some(first), Some(last)) = (state.first, state.last) {
                return Ok(Finish { first, last });
            }
            let seen = self.seen.load(Ordering::Relaxed);
            if state.abandoned {
                return Err(format!("the run ended after {seen} jobs"));
            }
            if seen != last_seen {
                (last_seen, last_progress) = (seen, Instant::now());
            } else if last_progress.elapsed() > STALL {
                return Err(format!(
                    "the run stalled: {seen} of {} jobs ran, none in the last {STALL:?}",
                    self.target.load(Ordering::Relaxed)
                ));
            }
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------- the table

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn print_table(options: &Options, rows: &[Row]) {
    println!(
        "\nno-op jobs a second, {} jobs per run, each framework at its defaults; \
         jobs/s from the first completion to the last, \"from start\" from the consumer's start\n",
        thousands(options.jobs as f64)
    );
    println!(
        "| backend | workers | round | apalis jobs/s | outband jobs/s | outband ÷ apalis \
         | raw ceiling /s | apalis ÷ ceiling | outband ÷ ceiling \
         | apalis from start | outband from start |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let line = |store: Store, workers: usize, round: &str, figures: [f64; 5]| {
        let [apalis, outband, ceiling, apalis_start, outband_start] = figures;
        println!(
            "| {store} | {workers} | {round} | {} | {} | {:.2}× | {} | {:.2}× | {:.2}× | {} | {} |",
            thousands(apalis),
            thousands(outband),
            outband / apalis,
            thousands(ceiling),
            apalis / ceiling,
            outband / ceiling,
            thousands(apalis_start),
            thousands(outband_start),
        );
    };
    for store in [Store::Redis, Store::Postgres] {
        for workers in [1, 4] {
            let cell: Vec<&Row> = rows
                .iter()
                .filter(|row| row.store == store && row.workers == workers)
                .collect();
            if cell.is_empty() {
                continue;
            }
            let figures = |row: &Row| {
                [
                    row.apalis.steady,
                    row.outband.steady,
                    row.ceiling,
                    row.apalis.from_start,
                    row.outband.from_start,
                ]
            };
            for row in &cell {
                line(store, workers, &row.round.to_string(), figures(row));
            }
            let medians: [f64; 5] =
                std::array::from_fn(|i| median(cell.iter().map(|row| figures(row)[i]).collect()));
            line(store, workers, "**median**", medians);
        }
    }
    println!(
        "\nraw ceiling: Redis, `LPUSH` one round trip at a time from one client; PostgreSQL, \
         4 connections each claiming and deleting one row per transaction \
         (`SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`, `DELETE`, synchronous_commit off). \
         The median row is the median of each column on its own; its outband ÷ apalis is \
         the ratio of the two medians."
    );
}
