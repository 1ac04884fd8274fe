//! Run with: cargo run -p test-results -- serve   (and, in other terminals: cargo run -p test-results -- run)
//!
//! Results of test cases for CI jobs arrive concurrently over HTTP, and each
//! updates its CI job's record in the application's own table (seed 000's
//! Jenkins reporting service). `serve` enqueues one job per result; the
//! consumers (`run`, `start`, … — the whole `outband-daemon` CLI) run them.
//! The update is a read-modify-write, so two updates of one CI job must never
//! overlap: the command carries the CI job id as its ordering key, and jobs
//! with one key run one at a time, in the order they were enqueued.
//!
//! ```sh
//! cargo run -p test-results -- serve --listen 127.0.0.1:3000
//! cargo run -p test-results -- run -t 4          # a consumer; start as many as you like
//! curl -X POST localhost:3000/ci-jobs/nightly-42/results \
//!      -H 'content-type: application/json' \
//!      -d '{"test_case": "login_works", "outcome": "passed"}'
//! curl localhost:3000/ci-jobs/nightly-42
//! cargo run -p test-results -- report
//! ```
//!
//! With `OUTBAND_URL` unset the queue is `outband.db` in the working
//! directory; `--url` or `OUTBAND_URL` may name a `redis://` backend
//! instead, or a `postgres://` one when built with `--features postgres`
//! (which links libpq). The records stay in the application's own
//! SQLite file, `test-results.db` (`--db`, `TEST_RESULTS_DB`), whatever the
//! queue: see `records.rs`. `serve --unkeyed` enqueues the same update
//! without the key, to show the updates it loses; see the README.

mod records;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, Subcommand};
use outband::{BoxError, queue_command};
use serde::{Deserialize, Serialize};

use records::{Outcome, Record};

/// Counts one test case's outcome in its CI job's record.
///
/// The ordering key is the CI job id: the results of one CI job are counted
/// one at a time, in the order the server received them, while results of
/// different CI jobs run in parallel on every consumer thread.
#[queue_command(name = "test_results::record_result", queue = "test-results", key = ci_job)]
fn record_result(ci_job: String, test_case: String, outcome: Outcome) -> Result<(), String> {
    records::add_result(&ci_job, &test_case, outcome).map_err(|error| error.to_string())
}

/// The same update without an ordering key: two results of one CI job may
/// run at once and the later write erases the earlier one. Only for showing
/// the lost updates (`serve --unkeyed`); never what an application wants.
#[queue_command(name = "test_results::record_result_unkeyed", queue = "test-results")]
fn record_result_unkeyed(
    ci_job: String,
    test_case: String,
    outcome: Outcome,
) -> Result<(), String> {
    records::add_result(&ci_job, &test_case, outcome).map_err(|error| error.to_string())
}

/// The test-results service: an HTTP server that enqueues each test case's
/// result, and the consumer that counts them.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct App {
    /// The application's own database: the SQLite file with the CI jobs' records.
    #[arg(
        long,
        env = "TEST_RESULTS_DB",
        default_value = "test-results.db",
        global = true
    )]
    db: PathBuf,
    /// The backend: the consumer's, and the queue `serve` enqueues on.
    #[command(flatten)]
    backend: outband_daemon::Backend,
    /// The consumer's settings, for `run` given without its name.
    #[command(flatten)]
    consumer: outband_daemon::ConsumerOptions,
    /// What to do; nothing means `run`, as for the consumer.
    #[command(subcommand)]
    command: Option<AppCommand>,
}

/// `serve` and `report`, then every command of the consumer.
#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Accept test-case results over HTTP and enqueue one job for each.
    Serve {
        /// The address to listen on; port 0 picks a free one (printed at start).
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Enqueue without the ordering key, which loses updates: only to show it.
        #[arg(long)]
        unkeyed: bool,
    },
    /// Print every CI job's record.
    Report,
    /// The consumer's commands.
    #[command(flatten)]
    Consumer(outband_daemon::Command),
}

fn main() -> ExitCode {
    let app = App::parse();
    // absolute, so that a daemon started from here finds the same file
    records::set_path(std::path::absolute(&app.db).unwrap_or(app.db));
    let result = match app.command {
        Some(AppCommand::Serve { listen, unkeyed }) => serve(app.backend.url(), listen, !unkeyed),
        Some(AppCommand::Report) => report(),
        Some(AppCommand::Consumer(command)) => return command.run(&app.backend),
        None => return outband_daemon::Command::Run(app.consumer).run(&app.backend),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("test-results: {error}");
            ExitCode::from(2)
        }
    }
}

/// `report`: one line per CI job, with its counts.
fn report() -> Result<(), BoxError> {
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>8}",
        "ci-job", "passed", "failed", "skipped", "total"
    );
    for record in records::all()? {
        println!(
            "{:<24} {:>8} {:>8} {:>8} {:>8}",
            record.ci_job,
            record.passed,
            record.failed,
            record.skipped,
            record.total()
        );
    }
    Ok(())
}

/// Whether the server enqueues the keyed command.
#[derive(Debug, Clone, Copy)]
struct ServerState {
    keyed: bool,
}

/// The body of `POST /ci-jobs/{ci_job}/results`.
#[derive(Debug, Deserialize)]
struct TestCaseResult {
    test_case: String,
    outcome: Outcome,
}

/// The answer to an accepted result: the id of the job that will count it.
#[derive(Debug, Serialize)]
struct Enqueued {
    job: u64,
}

/// `serve`: the HTTP server, until SIGTERM or SIGINT.
fn serve(url: &str, listen: SocketAddr, keyed: bool) -> Result<(), BoxError> {
    outband::set_default_backend(outband::open(url)?)?;
    records::init()?;
    let app = Router::new()
        .route("/ci-jobs/{ci_job}/results", post(post_result))
        .route("/ci-jobs/{ci_job}", get(get_record))
        .with_state(ServerState { keyed });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let key = if keyed {
            "keyed by CI job"
        } else {
            "UNKEYED: updates will be lost"
        };
        println!(
            "listening on http://{}, enqueuing on {url} ({key})",
            listener.local_addr()?
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok(())
    })
}

/// `POST /ci-jobs/{ci_job}/results`: enqueues the result's update and answers
/// 202 with the job id, or 503 when the queue cannot take it.
async fn post_result(
    State(state): State<ServerState>,
    Path(ci_job): Path<String>,
    Json(result): Json<TestCaseResult>,
) -> Result<(StatusCode, Json<Enqueued>), (StatusCode, String)> {
    // The queue's clients block: keep them off the async workers.
    let enqueued = tokio::task::spawn_blocking(move || {
        if state.keyed {
            record_result(ci_job, result.test_case, result.outcome)
        } else {
            record_result_unkeyed(ci_job, result.test_case, result.outcome)
        }
    })
    .await;
    match enqueued {
        Ok(Ok(job)) => Ok((StatusCode::ACCEPTED, Json(Enqueued { job: job.id().0 }))),
        Ok(Err(error)) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("could not enqueue: {error}"),
        )),
        Err(error) => Err((StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}

/// `GET /ci-jobs/{ci_job}`: the CI job's record, or 404.
async fn get_record(Path(ci_job): Path<String>) -> Result<Json<Record>, (StatusCode, String)> {
    match tokio::task::spawn_blocking(move || records::record(&ci_job)).await {
        Ok(Ok(Some(record))) => Ok(Json(record)),
        Ok(Ok(None)) => Err((StatusCode::NOT_FOUND, "no such CI job".to_owned())),
        Ok(Err(error)) => Err((StatusCode::SERVICE_UNAVAILABLE, error.to_string())),
        Err(error) => Err((StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}

/// Resolves at the first SIGTERM or SIGINT: the server stops accepting and
/// finishes the requests it has.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            eprintln!("test-results: cannot watch SIGTERM ({error}); stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
