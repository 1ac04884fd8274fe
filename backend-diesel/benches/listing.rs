//! Run with: cargo bench -p outband-diesel --all-features --bench listing
//!
//! What a page of [`BaseQueue::jobs`] costs as the table grows, on SQLite (a
//! file), PostgreSQL (`PG_DATABASE_URL`) and MariaDB/MySQL
//! (`MYSQL_DATABASE_URL`): one queue of 10,000 jobs, then the same queue
//! grown to 100,000 and to `--scale` (default 1,000,000) jobs, each size
//! listed in turn:
//!
//! - the first page of 50 pending jobs;
//! - a page of 50 pending jobs deep in the listing, below the queue's
//!   middle id;
//! - the first page of pending jobs of a command that 1 job in 1,000 has,
//!   which examines the whole [`JobQuery::SCAN`] and comes back short;
//! - the first page of dead jobs, 1 job in 100, short too;
//! - the first page of 50 done jobs, 1 job in 4, from the finished jobs'
//!   table (which holds more than `SCAN` rows at every size).
//!
//! Beside them, the raw ceilings, on a connection of the bench's own: a
//! bare `SELECT 1` round trip and a bare `SELECT *` of one row by primary
//! key; and outband's `job(id)` of that row. Each figure is the median and
//! the 99th percentile of `--samples` calls (default 200), after a few
//! calls to warm up.
//!
//! Jobs are enqueued with `enqueue_many`, 1,000 at a time; then the dead and
//! done ones are made in SQL, by id, so that they are spread over the
//! queue's ids as dead letters and finished jobs are. On PostgreSQL the tables are
//! vacuumed and analyzed then, on MySQL analyzed, at both sizes.
//!
//! Options: `--scale N`, `--samples N`, `--db sqlite|postgres|mysql`
//! (repeatable; default all three). Each database works in tables of its
//! own prefix, dropped at the end. Other arguments, such as cargo's
//! `--bench`, are ignored.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Untyped};
use diesel::{
    Connection, MysqlConnection, PgConnection, QueryResult, QueryableByName, RunQueryDsl,
    SqliteConnection,
};
use outband::{BaseQueue, JobId, JobQuery, JobState, NewJob};
use outband_bench::noop;
use outband_diesel::DatabaseQueue;

/// Jobs in the queue at the first size, and at the second.
const SMALL: usize = 10_000;
const MIDDLE: usize = 100_000;
/// The command of 1 job in 1,000.
const RARE: &str = "outband::bench::rare";
/// Calls made before each measured series.
const WARM_UP: usize = 10;

struct Options {
    scale: usize,
    samples: usize,
    dbs: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        scale: 1_000_000,
        samples: 200,
        dbs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if !matches!(name.as_str(), "--scale" | "--samples" | "--db") {
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or(format!("{name} needs a value"))?,
        };
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{name} needs a number"))
        };
        match name.as_str() {
            "--scale" => options.scale = number()?.max(MIDDLE),
            "--samples" => options.samples = number()?.max(1),
            _ => options.dbs.push(value.clone()),
        }
    }
    if options.dbs.is_empty() {
        options.dbs = vec!["sqlite".into(), "postgres".into(), "mysql".into()];
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\nusage: listing [--scale N] [--samples N] [--db NAME]…");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for db in &options.dbs {
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

fn url_of(db: &str) -> Result<String, String> {
    match db {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("outband-listing-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            Ok(format!("sqlite://{}/listing.db", dir.display()))
        }
        "postgres" => Ok(std::env::var("PG_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())),
        "mysql" => Ok(std::env::var("MYSQL_DATABASE_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())),
        other => Err(format!("unknown database `{other}`")),
    }
}

fn bench_database(db: &str, options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let url = url_of(db)?;
    let prefix = format!("listing{}_", std::process::id());
    let backend = DatabaseQueue::builder(&url)
        .prefix(&prefix)
        .max_connections(2)
        .temporary(true)
        .open()?;
    let mut raw = Raw::open(db, &url)?;
    let queue = format!("listing-{}", std::process::id());
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let mut sizes = vec![SMALL, MIDDLE, options.scale];
        sizes.dedup();
        let mut ids = Vec::with_capacity(options.scale);
        let (mut columns, mut filled) = (Vec::new(), Vec::new());
        for &size in &sizes {
            let start = Instant::now();
            fill(&backend, &queue, size - ids.len(), &mut ids)?;
            filled.push(format!("{:.1} s", start.elapsed().as_secs_f64()));
            finish_some(db, &mut raw, &prefix, &queue)?;
            columns.push(measure(
                &backend,
                &mut raw,
                &prefix,
                &queue,
                &ids,
                options.samples,
            )?);
        }

        println!(
            "\n{db}: one page of a listing as one queue grows ({}), median and 99th \
             percentile of {} calls; the queue's jobs enqueued in {}\n",
            raw.version()?,
            options.samples,
            filled.join(", then "),
        );
        let head: Vec<String> = sizes
            .iter()
            .map(|&size| format!("{} jobs: median | p99", thousands(size)))
            .collect();
        println!("| call | jobs listed | {} |", head.join(" | "));
        println!("|---|---:|{}", "---:|---:|".repeat(sizes.len()));
        for (i, call) in columns[0].iter().enumerate() {
            let times: Vec<String> = columns
                .iter()
                .map(|column| format!("{} | {}", micros(column[i].median), micros(column[i].p99)))
                .collect();
            // the page at the largest size
            let listed = columns[columns.len() - 1][i].listed;
            println!(
                "| {} | {} | {} |",
                call.name,
                listed.map_or(String::new(), |n| n.to_string()),
                times.join(" | "),
            );
        }
        Ok(())
    })();
    drop(raw);
    drop(backend);
    if db == "sqlite"
        && let Some(dir) = url
            .strip_prefix("sqlite://")
            .and_then(|p| p.strip_suffix("/listing.db"))
    {
        std::fs::remove_dir_all(dir).ok();
    }
    result
}

/// Enqueues `jobs` pending jobs onto `queue`, 1,000 at a time, 1 in 1,000
/// of them of [`RARE`], and adds their ids to `ids`.
fn fill(
    backend: &DatabaseQueue,
    queue: &str,
    jobs: usize,
    ids: &mut Vec<JobId>,
) -> Result<(), outband::Error> {
    let mut left = jobs;
    while left > 0 {
        let size = left.min(1_000);
        let batch = (0..size)
            .map(|i| {
                let command = if i == size / 2 { RARE } else { noop::NAME };
                Ok(NewJob::new(command, outband::codec::encode(&())?).queue(queue))
            })
            .collect::<Result<Vec<_>, outband::Error>>()?;
        ids.extend(backend.enqueue_many(batch)?);
        left -= size;
    }
    Ok(())
}

/// Makes 1 pending job of `queue` in 100 dead and 1 in 4 done (moved to the
/// finished jobs' table, as a completion moves it), by id, so that both are
/// spread over the queue; then vacuums (PostgreSQL) or analyzes (MySQL) the
/// tables.
fn finish_some(
    db: &str,
    raw: &mut Raw,
    prefix: &str,
    queue: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    // `queue` is the bench's own name: letters, digits and dashes
    assert!(queue.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let pending = format!("queue = '{queue}' AND state = 0");
    let columns = "id, command, args, queue, ordering_key, priority, attempt, max_attempts, \
                   state, token, run_at, enqueued_at, started_at, finished_at, deadline, \
                   duration_us, last_error, result, progress, progress_note, timeout_ms";
    raw.batch(&format!(
        "UPDATE {prefix}jobs SET state = 3, attempt = 1, started_at = enqueued_at, \
         finished_at = enqueued_at, last_error = 'bench: dead' WHERE {pending} AND id % 100 = 0"
    ))?;
    raw.batch(&format!(
        "INSERT INTO {prefix}done ({columns}) SELECT id, command, args, queue, ordering_key, \
         priority, 1, max_attempts, 2, 1, run_at, enqueued_at, enqueued_at, enqueued_at, NULL, \
         1000, NULL, NULL, NULL, NULL, timeout_ms FROM {prefix}jobs \
         WHERE {pending} AND id % 4 = 2"
    ))?;
    raw.batch(&format!(
        "DELETE FROM {prefix}jobs WHERE {pending} AND id % 4 = 2"
    ))?;
    match db {
        "postgres" => raw.batch(&format!("VACUUM ANALYZE {prefix}jobs, {prefix}done"))?,
        "mysql" => raw.batch(&format!("ANALYZE TABLE {prefix}jobs, {prefix}done"))?,
        _ => {}
    }
    Ok(())
}

/// One measured series: what was called, how many jobs its page listed
/// (none for the raw calls), and the median and 99th percentile.
struct Measured {
    name: String,
    listed: Option<usize>,
    median: Duration,
    p99: Duration,
}

/// Times `samples` calls of `f`, after [`WARM_UP`] more; `f` returns how
/// many jobs it listed.
fn series(
    name: &str,
    samples: usize,
    mut f: impl FnMut() -> Result<Option<usize>, Box<dyn std::error::Error>>,
) -> Result<Measured, Box<dyn std::error::Error>> {
    for _ in 0..WARM_UP {
        f()?;
    }
    let mut times = Vec::with_capacity(samples);
    let mut listed = None;
    for _ in 0..samples {
        let start = Instant::now();
        listed = f()?;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let p99 = (samples * 99).div_ceil(100).max(1) - 1;
    Ok(Measured {
        name: name.to_owned(),
        listed,
        median: times[samples / 2],
        p99: times[p99],
    })
}

fn measure(
    backend: &DatabaseQueue,
    raw: &mut Raw,
    prefix: &str,
    queue: &str,
    ids: &[JobId],
    samples: usize,
) -> Result<Vec<Measured>, Box<dyn std::error::Error>> {
    let pending = JobQuery::new(queue, JobState::Pending);
    // a pending job near the middle of the queue's ids: 1 in 100 is dead
    // and 1 in 4 done, by id
    let middle = (ids.len() / 2..ids.len())
        .map(|i| ids[i])
        .find(|id| id.0 % 100 != 0 && id.0 % 4 != 2)
        .ok_or("no pending job past the middle")?;
    let one_row = format!("SELECT * FROM {prefix}jobs WHERE id = ");
    let mut out = Vec::new();
    let list = |query: JobQuery| {
        move || -> Result<Option<usize>, Box<dyn std::error::Error>> {
            Ok(Some(backend.jobs(&query)?.jobs.len()))
        }
    };
    out.push(series("raw `SELECT 1`", samples, || {
        raw.select_one()?;
        Ok(None)
    })?);
    out.push(series(
        "raw `SELECT *` of one row by primary key",
        samples,
        || {
            raw.row(&one_row, middle)?;
            Ok(None)
        },
    )?);
    out.push(series("`job(id)` of that row", samples, || {
        backend.job(middle)?.ok_or("the job is gone")?;
        Ok(None)
    })?);
    out.push(series(
        "first page of 50 pending jobs",
        samples,
        list(pending.clone()),
    )?);
    out.push(series(
        "page of 50 pending jobs below the middle id",
        samples,
        list(pending.clone().before(middle)),
    )?);
    out.push(series(
        "first page of pending jobs of a command 1 job in 1,000 has",
        samples,
        list(pending.clone().command(RARE)),
    )?);
    out.push(series(
        "first page of dead jobs (1 job in 100)",
        samples,
        list(JobQuery::new(queue, JobState::Dead)),
    )?);
    out.push(series(
        "first page of 50 done jobs (1 job in 4)",
        samples,
        list(JobQuery::new(queue, JobState::Done)),
    )?);
    Ok(out)
}

/// `d` in microseconds, with a decimal below 10.
fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.0} µs")
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ------------------------------------------------------------ raw ceilings

/// A fixed statement, with at most one bigint bind after `head`, that
/// diesel prepares once per connection and keeps in its statement cache, as
/// it keeps outband's own statements: `diesel::sql_query` is prepared again
/// on every call, which would handicap the raw figures.
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

impl<DB> QueryFragment<DB> for Cached<'_>
where
    DB: Backend + HasSqlType<BigInt>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(self.head);
        if let Some(value) = &self.bind {
            out.push_bind_param::<BigInt, i64>(value)?;
        }
        Ok(())
    }
}

/// A single number.
#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)] // read, as a caller reads it
    n: i64,
}

/// A job's row, read whole; only its id is kept.
#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)] // read, as a caller reads it
    id: i64,
}

/// The server's version.
#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

/// A connection of the bench's own to the database it runs on.
enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    Mysql(MysqlConnection),
}

/// Runs `$body` with `$conn` bound to the connection, whatever the database.
macro_rules! with_raw {
    ($raw:expr, $conn:ident => $body:expr) => {
        match $raw {
            Raw::Sqlite($conn) => $body,
            Raw::Postgres($conn) => $body,
            Raw::Mysql($conn) => $body,
        }
    };
}

impl Raw {
    fn open(db: &str, url: &str) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(match db {
            "sqlite" => {
                let mut conn = SqliteConnection::establish(url.trim_start_matches("sqlite://"))?;
                // the backend has put the file in WAL mode
                conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;")?;
                Self::Sqlite(conn)
            }
            "postgres" => Self::Postgres(PgConnection::establish(url)?),
            _ => Self::Mysql(MysqlConnection::establish(url)?),
        })
    }

    fn batch(&mut self, sql: &str) -> QueryResult<()> {
        with_raw!(self, conn => conn.batch_execute(sql))
    }

    fn select_one(&mut self) -> QueryResult<()> {
        let sql = Cached {
            // MySQL's integer literals are already BIGINT
            head: match self {
                Self::Mysql(_) => "SELECT 1 AS n",
                _ => "SELECT CAST(1 AS BIGINT) AS n",
            },
            bind: None,
        };
        with_raw!(self, conn => sql.get_result::<Number>(conn))?;
        Ok(())
    }

    /// The row of job `id`, read with `head` (which ends in `id = `).
    fn row(&mut self, head: &str, id: JobId) -> QueryResult<()> {
        let sql = Cached {
            head,
            bind: Some(i64::try_from(id.0).unwrap_or(i64::MAX)),
        };
        with_raw!(self, conn => sql.get_result::<Stored>(conn))?;
        Ok(())
    }

    fn version(&mut self) -> QueryResult<String> {
        let sql = match self {
            Self::Sqlite(_) => "SELECT 'SQLite ' || sqlite_version() AS v",
            Self::Postgres(_) => "SELECT version() AS v",
            Self::Mysql(_) => "SELECT CONCAT('MySQL/MariaDB ', VERSION()) AS v",
        };
        let version: Version = with_raw!(self, conn => diesel::sql_query(sql).get_result(conn))?;
        // PostgreSQL's goes on with the compiler and platform
        Ok(version
            .v
            .split(" on ")
            .next()
            .unwrap_or_default()
            .to_owned())
    }
}
