//! Run with: cargo bench -p outband-diesel --all-features --bench databases
//!
//! The benchmark of [`outband_bench`] on `DatabaseQueue` over SQLite (a file),
//! PostgreSQL (`PG_DATABASE_URL`) and MariaDB/MySQL (`MYSQL_DATABASE_URL`),
//! then the database's raw ceilings beside outband's figures:
//!
//! - **Enqueue.** A raw single-row `INSERT`, its own transaction, one at a
//!   time from one connection and durable as an enqueue is (PostgreSQL:
//!   `synchronous_commit` on; SQLite: WAL, `synchronous = NORMAL`; MySQL: its
//!   defaults); the same in `BEGIN … COMMIT`; a one-job `enqueue`; and on
//!   PostgreSQL that enqueue again while four cancel feeds listen, as four
//!   running processors' do (each a session the server wakes at every
//!   notifying commit). They take turns, in rounds, so that a disk whose
//!   flushes slow down for a while slows them all alike.
//! - **Claim.** `--jobs` rows in a plain table, each claimed and deleted by a
//!   transaction of `SELECT … ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`
//!   then `DELETE`, from 1 and from 4 connections at once (PostgreSQL with
//!   `synchronous_commit` off, as outband's claims and outcomes commit;
//!   MySQL in `READ COMMITTED`, as outband's sessions); on SQLite, one
//!   connection's `DELETE … WHERE id = (SELECT min(id) …) RETURNING`. In turn
//!   with them, the multi processor with 1 and 4 threads, at
//!   `ProcessorConfig::default()` otherwise, as a share of the raw
//!   4-connection rate (SQLite: the one connection's).
//!
//! Then the claim's cost as the table grows: the mean time of a one-job claim
//! with 10,000 pending jobs, with `--scale` (default 1,000,000) pending jobs,
//! and with 10,000 pending beside `--scale` finished ones; and the processing
//! runs again with those finished rows in the table.
//!
//! `BENCH_NO_VACUUM=1` skips that `VACUUM ANALYZE` on PostgreSQL: with it,
//! the processing runs that follow slow down by an order of magnitude (an
//! open issue, whose cause is not yet found).
//!
//! Options: `--jobs N` (default 20,000), `--scale N` (default 1,000,000; 0
//! skips the claim-cost part), `--completers N` (the multi processors';
//! default: the backend's choice, as `ProcessorConfig`'s), `--db sqlite|postgres|mysql` (repeatable;
//! default all three). Each database works in tables of its own prefix,
//! dropped at the end. Other arguments, such as cargo's `--bench`, are ignored.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Text, Untyped};
use diesel::{
    Connection, MysqlConnection, PgConnection, QueryResult, QueryableByName, RunQueryDsl,
    SqliteConnection,
};
use outband::{BaseQueue, NewJob, Outcome};
use outband_bench::{self as bench, BenchConfig, Run, noop};
use outband_diesel::DatabaseQueue;

struct Options {
    jobs: usize,
    scale: usize,
    completers: Option<usize>,
    dbs: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        jobs: 20_000,
        scale: 1_000_000,
        completers: None,
        dbs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if !matches!(
            name.as_str(),
            "--jobs" | "--scale" | "--completers" | "--db"
        ) {
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
            "--jobs" => options.jobs = number()?.max(1),
            "--scale" => options.scale = number()?,
            "--completers" => options.completers = Some(number()?.max(1)),
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
            eprintln!("{message}\nusage: databases [--jobs N] [--scale N] [--db NAME]…");
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
            let dir = std::env::temp_dir().join(format!("outband-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            Ok(format!("sqlite://{}/bench.db", dir.display()))
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
    let prefix = format!("bench{}_", std::process::id());
    let backend = DatabaseQueue::builder(&url)
        .prefix(&prefix)
        .max_connections(8)
        .temporary(true)
        .open()?;
    let config = BenchConfig {
        jobs: options.jobs,
        threads: vec![1, 4],
        completers: options.completers,
        ..BenchConfig::default()
    };
    let shared: Arc<dyn BaseQueue> = Arc::new(backend.clone());
    let report = bench::run(Arc::clone(&shared), &config)?;
    println!(
        "\n{db}: DatabaseQueue, {} no-op jobs per run ({})\n",
        options.jobs,
        server_version(db, &url)?
    );
    println!("{report}");
    enqueue_beside_insert(db, &url, &prefix, &backend, (options.jobs / 10).max(10))?;
    claim_ceiling(db, &url, &prefix, &shared, &config)?;

    if options.scale > 0 {
        claim_cost(db, &url, &prefix, &backend, options)?;
        let config = BenchConfig {
            jobs: options.jobs,
            threads: vec![4],
            completers: options.completers,
            ..BenchConfig::default()
        };
        let report = bench::run(shared, &config)?;
        println!(
            "\n{db}: the same runs with {} finished jobs in the table\n",
            thousands(options.scale)
        );
        println!("{report}");
    }
    if db == "sqlite"
        && let Some(dir) = url
            .strip_prefix("sqlite://")
            .and_then(|p| p.strip_suffix("/bench.db"))
    {
        drop(backend);
        std::fs::remove_dir_all(dir).ok();
    }
    Ok(())
}

/// Mean time of `claim(queue, 1)` over `samples` claims, each job then done.
fn mean_claim(
    backend: &DatabaseQueue,
    name: &str,
    samples: u32,
) -> Result<Duration, outband::Error> {
    let lease = Duration::from_secs(60);
    let mut total = Duration::ZERO;
    for _ in 0..samples {
        let start = Instant::now();
        let claimed = backend.claim(name, 1, lease)?;
        total += start.elapsed();
        for job in claimed {
            let done = Outcome::Done {
                result: None,
                duration: Duration::ZERO,
            };
            backend.complete(&job.lease, done)?;
        }
    }
    Ok(total / samples)
}

fn fill(backend: &DatabaseQueue, name: &str, jobs: usize) -> Result<(), outband::Error> {
    let mut left = jobs;
    while left > 0 {
        let size = left.min(1_000);
        let batch = (0..size)
            .map(|_| Ok(NewJob::new(noop::NAME, outband::codec::encode(&())?).queue(name)))
            .collect::<Result<Vec<_>, outband::Error>>()?;
        backend.enqueue_many(batch)?;
        left -= size;
    }
    Ok(())
}

/// Adds `count` finished (`done`) jobs to queue `name`, straight in SQL: one
/// row, then the rows doubled until there are enough, then all of them moved
/// to the finished jobs' table as completions move them. Much quicker than
/// running a million jobs, and what the tables look like after they ran them
/// and the database's routine maintenance (autovacuum, InnoDB purge) caught up.
fn add_finished(
    db: &str,
    url: &str,
    prefix: &str,
    name: &str,
    count: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    // `name` is the bench's own queue name: letters, digits and dashes
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let columns = "command, args, queue, max_attempts, attempt, state, token, run_at, \
                   enqueued_at, started_at, finished_at, duration_us";
    let blob = if db == "postgres" {
        "'\\x01'::bytea"
    } else {
        "X'01'"
    };
    let mut sql = vec![format!(
        "INSERT INTO {prefix}jobs ({columns}) VALUES \
         ('{noop}', {blob}, '{name}', 4, 1, 2, 1, 0, 0, 0, 0, 1000)",
        noop = noop::NAME
    )];
    let mut have = 1;
    while have < count {
        let more = have.min(count - have);
        sql.push(format!(
            "INSERT INTO {prefix}jobs ({columns}) SELECT {columns} FROM {prefix}jobs \
             WHERE queue = '{name}' AND state = 2 LIMIT {more}"
        ));
        have += more;
    }
    // the jobs table has columns of its own (`cancel_reason`), so the ones
    // the two tables share are named
    let shared = "id, command, args, queue, ordering_key, priority, attempt, max_attempts, \
                  state, token, run_at, enqueued_at, started_at, finished_at, deadline, \
                  duration_us, last_error, result, progress, progress_note, timeout_ms";
    sql.push(format!(
        "INSERT INTO {prefix}done ({shared}) SELECT {shared} FROM {prefix}jobs \
         WHERE queue = '{name}' AND state = 2"
    ));
    sql.push(format!(
        "DELETE FROM {prefix}jobs WHERE queue = '{name}' AND state = 2"
    ));
    let run = |conn: &mut dyn FnMut(&str) -> QueryResult<()>| -> QueryResult<()> {
        for statement in &sql {
            conn(statement)?;
        }
        Ok(())
    };
    match db {
        "sqlite" => {
            let mut conn = SqliteConnection::establish(url.trim_start_matches("sqlite://"))?;
            run(&mut |s| conn.batch_execute(s))?;
        }
        "postgres" => {
            let mut conn = PgConnection::establish(url)?;
            run(&mut |s| conn.batch_execute(s))?;
            if std::env::var_os("BENCH_NO_VACUUM").is_none() {
                conn.batch_execute(&format!("VACUUM ANALYZE {prefix}jobs, {prefix}done"))?;
            }
        }
        _ => {
            let mut conn = MysqlConnection::establish(url)?;
            run(&mut |s| conn.batch_execute(s))?;
            conn.batch_execute(&format!("ANALYZE TABLE {prefix}jobs, {prefix}done"))?;
        }
    }
    Ok(())
}

fn claim_cost(
    db: &str,
    url: &str,
    prefix: &str,
    backend: &DatabaseQueue,
    options: &Options,
) -> Result<(), Box<dyn std::error::Error>> {
    const SMALL: usize = 10_000;
    const SAMPLES: u32 = 500;
    let scale = options.scale;
    let small = format!("claim-small-{}", std::process::id());
    let large = format!("claim-large-{}", std::process::id());

    fill(backend, &small, SMALL)?;
    let at_small = mean_claim(backend, &small, SAMPLES)?;

    let start = Instant::now();
    fill(backend, &large, scale)?;
    let filled_in = start.elapsed();
    let at_large = mean_claim(backend, &large, SAMPLES)?;

    backend.flush(&large)?;
    let start = Instant::now();
    add_finished(db, url, prefix, &large, scale)?;
    let finished_in = start.elapsed();
    fill(backend, &large, SMALL)?;
    let beside_finished = mean_claim(backend, &large, SAMPLES)?;

    println!("\n{db}: mean time of one claim (one job), {SAMPLES} claims each\n");
    println!("| table holds | claim |");
    println!("|---|---:|");
    println!(
        "| {} pending | {:.0} µs |",
        thousands(SMALL),
        micros(at_small)
    );
    println!(
        "| {} pending (enqueued in {:.1} s) | {:.0} µs |",
        thousands(scale),
        filled_in.as_secs_f64(),
        micros(at_large)
    );
    println!(
        "| {} pending, {} finished (written in {:.1} s) | {:.0} µs |",
        thousands(SMALL),
        thousands(scale),
        finished_in.as_secs_f64(),
        micros(beside_finished)
    );
    backend.flush(&small)?;
    backend.flush(&large)?;
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
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

/// A fixed statement, with at most one bigint bind between `head` and
/// `tail`, that diesel prepares once per connection and keeps in its
/// statement cache, as it keeps outband's own statements:
/// `diesel::sql_query` is prepared again on every call, which would
/// handicap the raw figures.
struct Cached<'a> {
    head: &'a str,
    bind: Option<i64>,
    tail: &'a str,
}

fn fixed(sql: &str) -> Cached<'_> {
    Cached {
        head: sql,
        bind: None,
        tail: "",
    }
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
        out.push_sql(self.tail);
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

/// The server's version.
#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    v: String,
}

/// A connection of its own to the database the bench runs on.
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
    /// A new connection, with `setup` run on it first (on SQLite, after the
    /// settings the backend gives its own connections).
    fn open(db: &str, url: &str, setup: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let mut raw = match db {
            "sqlite" => {
                let mut conn = SqliteConnection::establish(url.trim_start_matches("sqlite://"))?;
                // the backend has put the file in WAL mode
                conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;")?;
                Self::Sqlite(conn)
            }
            "postgres" => Self::Postgres(PgConnection::establish(url)?),
            _ => Self::Mysql(MysqlConnection::establish(url)?),
        };
        if !setup.is_empty() {
            with_raw!(&mut raw, conn => conn.batch_execute(setup))?;
        }
        Ok(raw)
    }

    fn batch(&mut self, sql: &str) -> QueryResult<()> {
        with_raw!(self, conn => conn.batch_execute(sql))
    }
}

fn server_version(db: &str, url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let sql = match db {
        "sqlite" => "SELECT 'SQLite ' || sqlite_version() AS v",
        "postgres" => "SELECT version() AS v",
        _ => "SELECT CONCAT('MySQL/MariaDB ', VERSION()) AS v",
    };
    let mut raw = Raw::open(db, url, "")?;
    let version: Version = with_raw!(&mut raw, conn => diesel::sql_query(sql).get_result(conn))?;
    // PostgreSQL's goes on with the compiler and platform
    Ok(version
        .v
        .split(" on ")
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// The `BIGINT` primary key a raw table numbers its rows with.
fn serial(db: &str) -> &'static str {
    match db {
        "sqlite" => "INTEGER PRIMARY KEY",
        "postgres" => "BIGSERIAL PRIMARY KEY",
        _ => "BIGINT AUTO_INCREMENT PRIMARY KEY",
    }
}

/// One call of each kind, timed; `per_call` what they took in all.
fn timed(
    per_call: &mut Duration,
    f: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    f()?;
    *per_call += start.elapsed();
    Ok(())
}

/// `count` raw single-row inserts on their own, `count` in `BEGIN … COMMIT`
/// and `count` one-job enqueues, taking turns in rounds; prints their rates
/// and the enqueue's share of the raw insert's.
fn enqueue_beside_insert(
    db: &str,
    url: &str,
    prefix: &str,
    backend: &DatabaseQueue,
    count: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    const ROUNDS: usize = 10;
    const FEEDS: usize = 4;
    let table = format!("{prefix}raw_insert");
    let durable = match db {
        // outband's pool sessions commit with it off, and an enqueue turns
        // it on for its own commit
        "postgres" => "SET synchronous_commit TO ON",
        _ => "",
    };
    let mut raw = Raw::open(db, url, durable)?;
    raw.batch(&format!(
        "CREATE TABLE {table} (id {}, args {} NOT NULL)",
        serial(db),
        if db == "postgres" { "BYTEA" } else { "BLOB" }
    ))?;
    let blob = if db == "postgres" {
        "'\\x01'::bytea"
    } else {
        "X'01'"
    };
    let insert = format!("INSERT INTO {table} (args) VALUES ({blob})");
    let queue = format!("raw-enqueue-{}", std::process::id());
    let (mut alone, mut in_transaction, mut enqueued, mut beside_feeds) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let per_round = count.div_ceil(ROUNDS);
    // where the backend pushes cancels: opened for their turn only
    let pushes = backend.cancel_feed()?.is_some();
    let enqueue_round = || -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..per_round {
            backend.enqueue(NewJob::new(noop::NAME, outband::codec::encode(&())?).queue(&queue))?;
        }
        Ok(())
    };
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..ROUNDS {
            timed(&mut alone, || {
                for _ in 0..per_round {
                    with_raw!(&mut raw, conn => fixed(&insert).execute(conn))?;
                }
                Ok(())
            })?;
            timed(&mut in_transaction, || {
                for _ in 0..per_round {
                    with_raw!(&mut raw, conn => {
                        conn.transaction(|conn| fixed(&insert).execute(conn))
                    })?;
                }
                Ok(())
            })?;
            timed(&mut enqueued, enqueue_round)?;
            if pushes {
                let feeds = (0..FEEDS)
                    .map(|_| backend.cancel_feed())
                    .collect::<Result<Vec<_>, _>>()?;
                timed(&mut beside_feeds, enqueue_round)?;
                drop(feeds);
            }
        }
        Ok(())
    })();
    raw.batch(&format!("DROP TABLE {table}"))?;
    backend.flush(&queue)?;
    result?;

    let calls = per_round * ROUNDS;
    let rate = |d: Duration| calls as f64 / d.as_secs_f64();
    let ceiling = rate(alone);
    let durability = match db {
        "postgres" => "synchronous_commit on",
        "sqlite" => "WAL, synchronous = NORMAL",
        _ => "the server's defaults",
    };
    println!(
        "\n{db}: one row at a time from one connection, durable ({durability}), \
         {ROUNDS} rounds of {per_round} each in turn\n"
    );
    println!("| call | per second | µs each | of the raw INSERT |");
    println!("|---|---:|---:|---:|");
    let feeds = format!("`enqueue` of one job, {FEEDS} cancel feeds listening");
    let mut rows = vec![
        ("raw `INSERT` of one row, its own transaction", alone),
        ("raw `BEGIN`; `INSERT` of one row; `COMMIT`", in_transaction),
        ("`enqueue` of one job", enqueued),
    ];
    if pushes {
        rows.push((feeds.as_str(), beside_feeds));
    }
    for (name, took) in rows {
        println!(
            "| {name} | {} | {:.0} | {:.0} % |",
            bench::thousands(rate(took)),
            micros(took) / calls as f64,
            rate(took) / ceiling * 100.0
        );
    }
    Ok(())
}

/// Claims and deletes every row of `table`, one row per transaction, from
/// `clients` connections at once; returns rows a second.
fn raw_claims(
    db: &str,
    url: &str,
    table: &str,
    rows: usize,
    clients: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let setup = match db {
        "postgres" => "SET synchronous_commit TO OFF",
        "mysql" => "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        _ => "",
    };
    let mut fill = Raw::open(db, url, "")?;
    fill.batch(&format!(
        "CREATE TABLE {table} (id {}, payload TEXT NOT NULL)",
        serial(db)
    ))?;
    let mut left = rows;
    while left > 0 {
        let size = left.min(1_000);
        fill.batch(&format!(
            "INSERT INTO {table} (payload) VALUES {}",
            vec!["('x')"; size].join(", ")
        ))?;
        left -= size;
    }
    if db != "sqlite" {
        // the planner then knows the table, as it knows outband's
        fill.batch(&format!(
            "ANALYZE {}{table}",
            if db == "mysql" { "TABLE " } else { "" }
        ))?;
    }
    let pick =
        format!("SELECT id, payload FROM {table} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED");
    let delete = format!("DELETE FROM {table} WHERE id = ");
    let take = format!(
        "DELETE FROM {table} WHERE id = (SELECT min(id) FROM {table}) RETURNING id, payload"
    );
    let mut conns = (0..clients)
        .map(|_| Raw::open(db, url, setup))
        .collect::<Result<Vec<_>, _>>()?;
    // each takes its share: while rows are left, a client finds one that no
    // other holds, so every transaction deletes a row
    let shares: Vec<usize> = (0..clients)
        .map(|i| rows / clients + usize::from(i < rows % clients))
        .collect();
    let start = Instant::now();
    let claimed = std::thread::scope(|scope| {
        let threads: Vec<_> = conns
            .iter_mut()
            .zip(&shares)
            .map(|(raw, &share)| {
                let (pick, delete, take) = (&pick, &delete, &take);
                scope.spawn(move || -> QueryResult<usize> {
                    let mut taken = 0;
                    for _ in 0..share {
                        let got = match raw {
                            Raw::Sqlite(conn) => fixed(take).load::<Picked>(conn)?.len(),
                            Raw::Postgres(conn) => claim_one(conn, pick, delete)?,
                            Raw::Mysql(conn) => claim_one(conn, pick, delete)?,
                        };
                        taken += got;
                    }
                    Ok(taken)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a raw claim thread panicked"))
            .sum::<QueryResult<usize>>()
    });
    let elapsed = start.elapsed();
    fill.batch(&format!("DROP TABLE {table}"))?;
    let claimed = claimed?;
    if claimed != rows {
        return Err(format!("{clients} raw clients claimed {claimed} of {rows} rows").into());
    }
    Ok(rows as f64 / elapsed.as_secs_f64())
}

/// One transaction: the first row no other transaction holds, then its
/// delete. Returns how many rows it took.
fn claim_one<C>(conn: &mut C, pick: &str, delete: &str) -> QueryResult<usize>
where
    C: Connection,
    for<'a> Cached<'a>: ExecuteDsl<C> + LoadQuery<'a, C, Picked>,
{
    conn.transaction(|conn| {
        let Some(row) = fixed(pick).load::<Picked>(conn)?.into_iter().next() else {
            return Ok(0);
        };
        Cached {
            head: delete,
            bind: Some(row.id),
            tail: "",
        }
        .execute(conn)
    })
}

/// Prints the raw claim ceilings and, measured in turn with them, the
/// multi processor's rates with 1 and 4 threads at the default settings.
fn claim_ceiling(
    db: &str,
    url: &str,
    prefix: &str,
    backend: &Arc<dyn BaseQueue>,
    config: &BenchConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let table = format!("{prefix}raw_jobs");
    let rows = config.jobs;
    let clients: &[usize] = if db == "sqlite" { &[1] } else { &[1, 4] };
    let (mut raw, mut outband) = (Vec::new(), Vec::new());
    for (i, threads) in [1, 4].into_iter().enumerate() {
        if let Some(&n) = clients.get(i) {
            raw.push((n, raw_claims(db, url, &table, rows, n)?));
        }
        let run = Run::Multi {
            threads,
            prefetch: None,
        };
        let row = bench::run_one(Arc::clone(backend), config, run)?;
        outband.push((threads, row.jobs_per_sec));
    }
    let ceiling = raw.last().map_or(f64::NAN, |&(_, rate)| rate);
    let how = match db {
        "sqlite" => "`DELETE … WHERE id = (SELECT min(id) …) RETURNING`".to_owned(),
        "postgres" => {
            "`SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`, `DELETE`, synchronous_commit off".to_owned()
        }
        _ => "`SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`, `DELETE`, READ COMMITTED".to_owned(),
    };
    println!(
        "\n{db}: claim ceiling, {} rows claimed and deleted one per transaction ({how}), \
         each in turn with a multi processor run\n",
        thousands(rows)
    );
    let of = if db == "sqlite" {
        "of the raw 1-connection rate"
    } else {
        "of the raw 4-connection rate"
    };
    println!("| run | rows/s | {of} |");
    println!("|---|---:|---:|");
    for &(n, rate) in &raw {
        println!(
            "| raw, {n} connection{} | {} | {:.0} % |",
            if n == 1 { "" } else { "s" },
            bench::thousands(rate),
            rate / ceiling * 100.0
        );
    }
    for (threads, rate) in outband {
        println!(
            "| multi processor, {threads} thread{}, otherwise `ProcessorConfig::default()` | {} | {:.0} % |",
            if threads == 1 { "" } else { "s" },
            bench::thousands(rate),
            rate / ceiling * 100.0
        );
    }
    Ok(())
}
