//! How long the dashboard takes to render its pages over a backend holding
//! a million jobs: the overview, the first page of a queue's pending jobs,
//! a page deep in them, a job's page, and the overview's JSON.
//!
//! Run with: cargo bench -p outband-web --bench render
//!
//! `OUTBAND_BENCH_JOBS` sets how many jobs (default 1,000,000); with
//! `OUTBAND_BENCH_POSTGRES=1` it also runs on the PostgreSQL at
//! `PG_DATABASE_URL`, and with `OUTBAND_BENCH_MYSQL=1` on the MySQL or
//! MariaDB at `MYSQL_DATABASE_URL`, in tables of their own that are
//! dropped at the end.
//! Each figure is a median of renders through the router. "cold" renders
//! each time on a new router, which reads everything from the backend;
//! "warm" renders again and again on one, as a dashboard in use does, so
//! it reuses the list of queues (ten seconds); the overview's warm renders
//! are spaced past the second its counts are reused as they are, so each
//! shows the last reading and starts a new one in the background, as each
//! poll of an open overview does. The backend calls behind the pages are
//! timed alone after them: `estimate_stats` is what the first overview of
//! a router waits for, and what each new reading costs; `stats`, the
//! exact count the CLI and the metrics take, beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use outband::{BaseQueue, JobId, JobQuery, JobState, NewJob, Outcome, codec};
use outband_web::Dashboard;
use tower::ServiceExt;

const QUEUE: &str = "bench";
const BATCH: usize = 10_000;
const RUNS: usize = 11;

/// A backend call timed alone.
type Call = Box<dyn Fn(&dyn BaseQueue) + Send + Sync>;

fn main() {
    let jobs = std::env::var("OUTBAND_BENCH_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let sqlite = Arc::new(outband_diesel::DatabaseQueue::open(&url).unwrap());
    runtime.block_on(bench("SQLite", sqlite, jobs));

    if std::env::var("OUTBAND_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        let prefix = format!("web_bench_{}_", std::process::id());
        let postgres = outband_diesel::DatabaseQueue::builder(outband_testkit::pg_url())
            .prefix(prefix)
            .temporary(true)
            .open()
            .unwrap();
        runtime.block_on(bench("PostgreSQL", Arc::new(postgres), jobs));
    }

    if std::env::var("OUTBAND_BENCH_MYSQL").is_ok_and(|v| v == "1") {
        let prefix = format!("web_bench_{}_", std::process::id());
        let mysql = outband_diesel::DatabaseQueue::builder(outband_testkit::mysql_url())
            .prefix(prefix)
            .temporary(true)
            .open()
            .unwrap();
        runtime.block_on(bench("MySQL", Arc::new(mysql), jobs));
    }
}

/// Fills `backend` with `jobs` pending jobs, a few thousand done and dead
/// among them, then times each page.
async fn bench(name: &str, backend: Arc<dyn BaseQueue>, jobs: usize) {
    let started = Instant::now();
    let filler = backend.clone();
    let (oldest, done) = tokio::task::spawn_blocking(move || fill(&*filler, jobs))
        .await
        .unwrap();
    println!(
        "{name}: {jobs} jobs stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let router = Dashboard::new(backend.clone()).router();
    // a page near the oldest jobs: the listing starts below that id
    let deep = JobId(oldest.0 + 100);
    let pages = [
        ("overview", "/".to_owned()),
        ("overview JSON", "/api/overview".to_owned()),
        (
            "pending, first page",
            format!("/jobs?queue={QUEUE}&state=pending"),
        ),
        (
            "pending, deep page",
            format!("/jobs?queue={QUEUE}&state=pending&before={deep}"),
        ),
        (
            "done, first page",
            format!("/jobs?queue={QUEUE}&state=done"),
        ),
        ("dead letters", format!("/dead?queue={QUEUE}")),
        ("a job", format!("/jobs/{done}")),
        ("queues", "/queues".to_owned()),
        (
            "flush, confirmation",
            format!("/queues/flush?queue={QUEUE}"),
        ),
    ];
    println!("{:<24} {:>12} {:>12}", "page", "cold", "warm");
    for (what, path) in &pages {
        // a new router each time: nothing it keeps from an earlier request
        let cold = time(|| {
            let router = Dashboard::new(backend.clone()).router();
            async move {
                let started = Instant::now();
                render(&router, path).await;
                started.elapsed()
            }
        })
        .await;
        let warm = if path.starts_with("/api/overview") || path == "/" {
            // past the second the overview's counts are reused as they are:
            // each render shows the last reading and starts a new one behind
            // it, as each poll of an open overview does
            time(|| async {
                tokio::time::sleep(Duration::from_millis(1_050)).await;
                let started = Instant::now();
                render(&router, path).await;
                started.elapsed()
            })
            .await
        } else {
            time(|| async {
                let started = Instant::now();
                render(&router, path).await;
                started.elapsed()
            })
            .await
        };
        println!("{what:<24} {:>9.1} ms {:>9.1} ms", ms(cold), ms(warm));
    }

    println!("backend calls alone:");
    let calls: [(&str, Call); 5] = [
        (
            "estimate_stats",
            Box::new(|b: &dyn BaseQueue| {
                b.estimate_stats(QUEUE, Dashboard::EXACT_UP_TO).unwrap();
            }),
        ),
        (
            "stats",
            Box::new(|b: &dyn BaseQueue| {
                b.stats(QUEUE).unwrap();
            }),
        ),
        (
            "queues + paused",
            Box::new(|b: &dyn BaseQueue| {
                b.queues().unwrap();
                b.paused().unwrap();
            }),
        ),
        (
            "jobs, first page",
            Box::new(|b: &dyn BaseQueue| {
                b.jobs(&JobQuery::new(QUEUE, JobState::Pending)).unwrap();
            }),
        ),
        (
            "jobs, deep page",
            Box::new(move |b: &dyn BaseQueue| {
                let query = JobQuery::new(QUEUE, JobState::Pending).before(deep);
                b.jobs(&query).unwrap();
            }),
        ),
    ];
    for (what, call) in calls {
        let backend = backend.clone();
        let call = Arc::new(call);
        let median = time(|| {
            let (backend, call) = (backend.clone(), call.clone());
            async move {
                let started = Instant::now();
                tokio::task::spawn_blocking(move || call(&*backend))
                    .await
                    .unwrap();
                started.elapsed()
            }
        })
        .await;
        println!("  {what:<22} {:>9.1} ms", ms(median));
    }
}

/// Stores `jobs` pending jobs in batches; then runs 2,000 of the oldest to
/// `done` and 500 to `dead`, so that the run-time figures have data.
/// Returns the oldest job's id and a done one's.
fn fill(backend: &dyn BaseQueue, jobs: usize) -> (JobId, JobId) {
    let args = codec::encode(&("a payload of a usual size".to_owned(), 42u64)).unwrap();
    let mut oldest = None;
    let mut stored = 0;
    while stored < jobs {
        let batch: Vec<NewJob> = (0..BATCH.min(jobs - stored))
            .map(|_| NewJob::new("bench::noop", args.clone()).queue(QUEUE))
            .collect();
        stored += batch.len();
        let ids = backend.enqueue_many(batch).unwrap();
        oldest = oldest.or(ids.first().copied());
    }
    let mut done = None;
    for (count, dead) in [(2_000, false), (500, true)] {
        let claimed = backend
            .claim(QUEUE, count, Duration::from_secs(600))
            .unwrap();
        let completions = claimed
            .into_iter()
            .map(|claim| {
                done = done.or(Some(claim.job.id));
                let outcome = if dead {
                    Outcome::Dead {
                        error: "failed for the benchmark".to_owned(),
                    }
                } else {
                    Outcome::Done {
                        result: None,
                        duration: Duration::from_millis(claim.job.id.0 % 50),
                    }
                };
                (claim.lease, outcome)
            })
            .collect();
        backend.complete_many(completions).unwrap();
    }
    (oldest.unwrap(), done.unwrap())
}

async fn render(router: &Router, path: &str) {
    let request = Request::get(path)
        .header(header::HOST, "bench.test")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
}

/// The median of the times [`RUNS`] runs of `work` measure, after one to
/// warm up.
async fn time<F, Fut>(work: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Duration>,
{
    work().await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(work().await);
    }
    times.sort_unstable();
    times[RUNS / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
