//! Run with: cargo bench -p outband-bench --bench limits [-- --only redis,postgres]
//!
//! What limited jobs that cannot start cost the claims of the jobs that
//! can. On each backend, a queue holds 10,000 free no-op jobs; beside them,
//! in the same queue and at a higher priority (so that they sort first),
//! sit either nothing (`unlimited`), 10,000 jobs of one rate key whose turn
//! is an hour away (`rate-limited`), or 10,000 jobs of one concurrency key
//! whose one slot is taken (`concurrency-limited`). The figure is the mean
//! time of `claim(queue, 10)` over 300 claims, each followed (untimed) by
//! the completion of what it took, once the limited jobs wait: the claims
//! before the first that fills (a backend may pass limited jobs over a
//! bounded number per claim) are untimed, and their count is printed; the three setups alternate for
//! `--rounds` rounds (default 2) and each keeps its best round. The goal is
//! a limited claim within 20 % of the unlimited one.
//!
//! Backends: `memory`, `sqlite` (a file in a temporary directory),
//! `postgres` (`PG_DATABASE_URL`), `mysql` (`MYSQL_DATABASE_URL`) and
//! `redis` (`REDIS_URL`), each in tables or a namespace of its own; a
//! backend that does not enforce a limit shows `—` for it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, Concurrency, MemoryQueue, NewJob, Outcome, RateLimit, codec};
use outband_diesel::DatabaseQueue;
use outband_redis::{RedisOptions, RedisQueue};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const FREE: usize = 10_000;
const LIMITED: usize = 10_000;
const CLAIMS: usize = 300;
const BATCH: usize = 10;
const LEASE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    Unlimited,
    RateLimited,
    ConcurrencyLimited,
}

impl Setup {
    const ALL: [Self; 3] = [Self::Unlimited, Self::RateLimited, Self::ConcurrencyLimited];

    fn name(self) -> &'static str {
        match self {
            Self::Unlimited => "unlimited",
            Self::RateLimited => "rate-limited",
            Self::ConcurrencyLimited => "concurrency-limited",
        }
    }
}

fn main() -> ExitCode {
    let mut only: Option<Vec<String>> = None;
    let mut rounds = 2;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                only = args
                    .next()
                    .map(|list| list.split(',').map(String::from).collect());
            }
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).unwrap_or(rounds),
            _ => {}
        }
    }
    println!(
        "claim(queue, {BATCH}) beside {LIMITED} limited jobs that cannot start, \
         {FREE} free jobs; mean of {CLAIMS} claims, best of {rounds} rounds\n"
    );
    println!("| backend | unlimited | rate-limited | ratio | concurrency-limited | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut failed = false;
    for name in ["memory", "sqlite", "postgres", "mysql", "redis"] {
        if only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|o| o == name))
        {
            continue;
        }
        match bench_backend(name, rounds) {
            Ok(row) => println!("{row}"),
            Err(error) => {
                eprintln!("{name}: {error}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One backend's row: the best mean claim time of each setup.
fn bench_backend(name: &str, rounds: usize) -> Result<String> {
    let mut best = [None::<Duration>; 3];
    for round in 0..rounds {
        for (slot, setup) in Setup::ALL.into_iter().enumerate() {
            let scratch = Scratch::open(name, &format!("{round}{slot}"))?;
            let backend = scratch.backend();
            let capabilities = backend.capabilities();
            let enforced = match setup {
                Setup::Unlimited => true,
                Setup::RateLimited => capabilities.rate_limits,
                Setup::ConcurrencyLimited => capabilities.concurrency_limits,
            };
            if !enforced {
                continue;
            }
            let mean = measure(&*backend, setup)?;
            scratch.close();
            best[slot] = Some(best[slot].map_or(mean, |best| best.min(mean)));
        }
    }
    let shown = |mean: Option<Duration>| {
        mean.map_or("—".to_owned(), |mean| {
            format!("{:.0} µs", mean.as_secs_f64() * 1e6)
        })
    };
    let ratio = |mean: Option<Duration>| match (mean, best[0]) {
        (Some(mean), Some(base)) => format!("{:.2}×", mean.as_secs_f64() / base.as_secs_f64()),
        _ => "—".to_owned(),
    };
    Ok(format!(
        "| {name} | {} | {} | {} | {} | {} |",
        shown(best[0]),
        shown(best[1]),
        ratio(best[1]),
        shown(best[2]),
        ratio(best[2]),
    ))
}

/// Fills the queue for `setup`, then times the claims.
fn measure(backend: &dyn BaseQueue, setup: Setup) -> Result<Duration> {
    let queue = "limits-bench";
    let job = |n: usize| {
        NewJob::new("bench::noop", codec::encode(&(n as u64,)).expect("encodes")).queue(queue)
    };
    let limit = |job: NewJob| match setup {
        Setup::Unlimited => job,
        Setup::RateLimited => job.rate(RateLimit::new("bench:rate", 1, Duration::from_secs(3600))),
        Setup::ConcurrencyLimited => job.concurrency(Concurrency::new("bench:slots", 1)),
    };
    if setup != Setup::Unlimited {
        // The first limited job starts, and takes the key's one turn or slot.
        backend.enqueue(limit(job(0)).priority(10))?;
        let first = backend.claim(queue, 1, LEASE)?;
        assert_eq!(first.len(), 1, "the first limited job starts");
        for chunk in (1..LIMITED).collect::<Vec<_>>().chunks(1000) {
            backend.enqueue_many(chunk.iter().map(|&n| limit(job(n)).priority(10)).collect())?;
        }
    }
    for chunk in (0..FREE).collect::<Vec<_>>().chunks(1000) {
        backend.enqueue_many(chunk.iter().map(|&n| job(LIMITED + n)).collect())?;
    }
    let complete = |claimed: Vec<outband::Claimed>| -> Result<usize> {
        let count = claimed.len();
        for claimed in claimed {
            assert!(
                claimed.job.rate.is_none() && claimed.job.concurrency.is_none(),
                "{}: a limited job started past its limit",
                setup.name()
            );
            let done = Outcome::Done {
                result: None,
                duration: Duration::ZERO,
            };
            backend.complete(&claimed.lease, done)?;
        }
        Ok(count)
    };
    // Warm-up, untimed: a backend may pass the limited jobs over a bounded
    // number per claim, parking them out of the way; the figure is the
    // claim once they wait there.
    let mut warm_up = 0;
    while complete(backend.claim(queue, BATCH, LEASE)?)? < BATCH {
        warm_up += 1;
        assert!(warm_up < 5_000, "{}: claims never filled", setup.name());
    }
    let mut timed = Duration::ZERO;
    for _ in 0..CLAIMS {
        let started = Instant::now();
        let claimed = backend.claim(queue, BATCH, LEASE)?;
        timed += started.elapsed();
        assert_eq!(
            complete(claimed)?,
            BATCH,
            "{}: a claim took only free jobs",
            setup.name()
        );
    }
    if warm_up > 0 {
        eprintln!(
            "{}: {warm_up} claims passed limited jobs over before one filled",
            setup.name()
        );
    }
    Ok(timed / CLAIMS as u32)
}

/// A backend in tables, a file or a namespace of its own, removed after.
enum Scratch {
    Memory(Arc<MemoryQueue>),
    /// The SQLite file's directory lives as long as the queue.
    Sql {
        queue: Arc<DatabaseQueue>,
        _dir: Option<tempfile::TempDir>,
    },
    Redis(Arc<RedisQueue>, String),
}

impl Scratch {
    fn open(name: &str, run: &str) -> Result<Self> {
        let tag = format!("limitsbench{}r{run}", std::process::id());
        let sql = |url: String, dir: Option<tempfile::TempDir>| -> Result<Self> {
            let queue = DatabaseQueue::builder(&url)
                .prefix(format!("{tag}_"))
                .temporary(true)
                .open()?;
            Ok(Self::Sql {
                queue: Arc::new(queue),
                _dir: dir,
            })
        };
        let env =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        match name {
            "memory" => Ok(Self::Memory(Arc::new(MemoryQueue::new()))),
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                sql(url, Some(dir))
            }
            "postgres" => sql(
                env("PG_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
                None,
            ),
            "mysql" => sql(
                env("MYSQL_DATABASE_URL", "mysql://root@127.0.0.1:3306/test"),
                None,
            ),
            "redis" => {
                let url = env("REDIS_URL", "redis://127.0.0.1:6379/");
                let queue =
                    RedisQueue::with_options(&url, RedisOptions::default().namespace(&tag))?;
                Ok(Self::Redis(Arc::new(queue), tag))
            }
            other => Err(format!("unknown backend `{other}`").into()),
        }
    }

    fn backend(&self) -> Arc<dyn BaseQueue> {
        match self {
            Self::Memory(queue) => queue.clone(),
            Self::Sql { queue, .. } => queue.clone(),
            Self::Redis(queue, _) => queue.clone(),
        }
    }

    fn close(&self) {
        if let Self::Redis(queue, namespace) = self
            && let Err(error) = outband_redis::delete_namespace(queue, namespace)
        {
            eprintln!("could not delete the namespace {namespace}: {error}");
        }
    }
}
