//! Run with: cargo run -p web-app -- serve
//! and, in a second terminal: CHURN_WEBHOOK=http://… cargo run -p web-app -- run
//!
//! djutils' example in Rust form: a web app whose async view enqueues the
//! `#[queue_command]` function `churn_data` and answers at once, while a
//! consumer (djutils' `consumer.py`) runs the call out-of-band. `churn_data`
//! is an `async fn` that posts its results to a webhook; `index_words`, a
//! plain `fn` doing CPU work, stands beside it. One binary is both sides,
//! as in the producer/consumer template: `serve` is the web server, and
//! every command of the consumer daemon is here too, `run`, `start -l LOG
//! -p PIDFILE`, `stop -p PIDFILE`, `status -p PIDFILE`, `stats`, `dead`, …
//! (see `outband_daemon`).
//!
//! ```text
//! $ web-app serve --bind 127.0.0.1:3000        # terminal 1
//! $ CHURN_WEBHOOK=http://127.0.0.1:8080/churned web-app run   # terminal 2
//! $ curl -d payload='some data to churn' http://127.0.0.1:3000/churn/7/42
//! {"job":1}
//! $ curl http://127.0.0.1:3000/jobs/1
//! {"id":1,"command":"web_app::commands::churn_data","state":"done","attempt":1,"last_error":null}
//! $ curl -d text='to be or not to be' http://127.0.0.1:3000/index/3
//! {"job":2}
//! $ cat indexed.txt                            # one line per run of index_words
//! ```
//!
//! Both sides read the backend from `--url` or `OUTBAND_URL`; unset, it is
//! the SQLite file `outband.db` in the working directory. `redis://…` and
//! (built with `--features postgres`) `postgres://…` work as well, with
//! `?namespace=` or `?prefix=` to keep apart several apps on one server.
//! With no arguments at all the binary prints its help rather than start
//! consuming as the daemon's own binary does: `run` starts the consumer.

mod commands;
mod web;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The web app and its consumer, in one binary.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "djutils' churn_data example: the web app (`serve`) and the outband consumer in one binary",
    long_about = None,
    arg_required_else_help = true
)]
struct Cli {
    /// The backend, shared with `outband_daemon`: `--url` or `OUTBAND_URL`.
    #[command(flatten)]
    backend: outband_daemon::Backend,
    /// What to do.
    #[command(subcommand)]
    command: AppCommand,
}

/// `serve`, and every command of the consumer.
#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Serve the web app until SIGTERM or SIGINT, then finish the requests in flight.
    Serve {
        /// The address to listen on (port 0: any free port, printed at start).
        #[arg(long, env = "WEB_APP_BIND", default_value = "127.0.0.1:3000")]
        bind: SocketAddr,
    },
    // The daemon's commands, as they are: run, start, stop, status, …
    #[command(flatten)]
    Consumer(outband_daemon::Command),
}

fn main() -> ExitCode {
    let Cli { backend, command } = Cli::parse();
    match command {
        AppCommand::Serve { bind } => match serve(backend.url(), bind) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("web-app: {error}");
                ExitCode::from(2)
            }
        },
        // The consumer's commands run exactly as in `outband_daemon::main`.
        AppCommand::Consumer(command) => command.run(&backend),
    }
}

/// Serves the web app on `bind`, with `url`'s backend as the default,
/// until SIGTERM or SIGINT.
fn serve(url: &str, bind: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let backend = outband::open(url)?;
    outband::set_default_backend(backend.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        // The one line a supervisor (or the integration test) waits for.
        println!("web-app listening on http://{}", listener.local_addr()?);
        axum::serve(listener, web::router(backend))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        println!("web-app stopped");
        Ok(())
    })
}

/// Resolves on the first SIGTERM or SIGINT: axum then stops accepting and
/// lets the requests in flight finish.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            // Without the handlers, the default action ends the process.
            eprintln!("web-app: cannot handle signals ({error}); they will kill the server");
            std::future::pending::<()>().await;
        }
    }
}
