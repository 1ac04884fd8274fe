//! Run with: cargo bench -p outband-diesel --all-features --bench databases
//!
//! The benchmark of [`outband_bench`] on `DatabaseQueue` over SQLite (a file),
//! PostgreSQL (`PG_DATABASE_URL`) and MariaDB/MySQL (`MYSQL_DATABASE_URL`),
//! then the claim's cost as the table grows: the mean time of a one-job claim
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

use diesel::Connection;
use diesel::connection::SimpleConnection;
use outband::{BaseQueue, NewJob, Outcome};
use outband_bench::{self as bench, BenchConfig, noop};
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
        "\n{db}: DatabaseQueue, {} no-op jobs per run\n",
        options.jobs
    );
    println!("{report}");

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
    sql.push(format!(
        "INSERT INTO {prefix}done SELECT * FROM {prefix}jobs WHERE queue = '{name}' AND state = 2"
    ));
    sql.push(format!(
        "DELETE FROM {prefix}jobs WHERE queue = '{name}' AND state = 2"
    ));
    let run = |conn: &mut dyn FnMut(&str) -> diesel::QueryResult<()>| -> diesel::QueryResult<()> {
        for statement in &sql {
            conn(statement)?;
        }
        Ok(())
    };
    match db {
        "sqlite" => {
            let mut conn =
                diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://"))?;
            run(&mut |s| conn.batch_execute(s))?;
        }
        "postgres" => {
            let mut conn = diesel::PgConnection::establish(url)?;
            run(&mut |s| conn.batch_execute(s))?;
            if std::env::var_os("BENCH_NO_VACUUM").is_none() {
                conn.batch_execute(&format!("VACUUM ANALYZE {prefix}jobs, {prefix}done"))?;
            }
        }
        _ => {
            let mut conn = diesel::MysqlConnection::establish(url)?;
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
