//! The outband consumer as a library: your binary calls it, so the commands
//! linked into your binary are the ones it runs.
//!
//! ```no_run
//! // the crate that defines your #[queue_command]s; linking it registers them
//! // use my_app_jobs as _;
//!
//! fn main() -> std::process::ExitCode {
//!     // `--version` shows your crate's name and version, then outband-daemon's
//!     outband_daemon::main!()
//! }
//! ```
//!
//! That binary then understands:
//!
//! | command | what it does |
//! |---|---|
//! | `run` (or `-f`, or the consumer's options alone) | consumes in the foreground, for systemd and containers |
//! | `start -p PIDFILE [-l LOG]` | consumes as a Unix daemon; `start` returns once the daemon has opened its backend, and fails with the reason when it could not |
//! | `stop -p PIDFILE` | SIGTERM, then waits up to the grace period and reports how it ended; a dead daemon's pid file is removed |
//! | `status -p PIDFILE` | exit 0 running, 1 dead but the pid file exists, 3 not running; warns of jobs no command serves |
//! | `restart` | `stop`, then `start` |
//! | `quiet -p PIDFILE` | the daemon stops claiming and enqueueing periodic commands; running jobs go on |
//! | `commands` | the registered commands, with their queue and options |
//! | `stats` | per queue (those holding jobs, and paused ones): counts per state, jobs/s, run-time p50 and p99, and `paused` or `on`; warns of jobs no command serves |
//! | `pause Q…` / `resume Q…` | pauses queues for every consumer of the backend: each stops claiming from them at its next claim, running jobs finish, enqueues are kept; the pause is stored in the backend, so it outlives consumers, until `resume`. A queue that holds no job yet may be paused, and `pause` says so |
//! | `job ID…` | each job as stored: state, attempts, timings, timeout, progress, last error, and its arguments and result as JSON through the command's own types (exit 1 when one is not found) |
//! | `jobs [--state S] [--queue Q]… [--command C] [--limit N] [--before ID]` | per queue, a line per job in state `S` (default `pending`), newest first: id, queue, command, state, attempts, enqueue time, and progress or last error; at most `N` (default 50, at most 1,000) per queue; when more may follow, the line to go on with (`--before ID`). It reads the backend a bounded page at a time ([`JobQuery`](outband::JobQuery)) and stops after 50 pages of a sparse `--command` filter, saying where to go on |
//! | `cancel ID… [--reason R]` | cancels jobs: a pending one at once, a running one at once where the backend pushes cancels, else at its next heartbeat (its consumer stops it and it ends `cancelled`); exit 1 when one had finished already or was not found, which it says |
//! | `dead list \| retry ID… \| retry --all [--queue Q] \| delete ID…` | the dead-letter state |
//! | `flush --queue Q [--yes]` | deletes a queue's pending jobs, after asking |
//! | `dashboard [--bind ADDR] [--token T \| --insecure] [--read-only]` | serves the web dashboard (outband-web) of the backend, on `127.0.0.1:9140` by default, until SIGINT or SIGTERM; an address other than loopback needs `--token` (or `OUTBAND_DASHBOARD_TOKEN`) or `--insecure`, else it is refused (feature `dashboard`) |
//! | `bench` | the core benchmark, with a built-in no-op command (feature `bench`) |
//!
//! The dashboard's browser tests drive the real `dashboard` command and a
//! real consumer through headless Chromium: with Debian's `chromium` and
//! `chromium-driver` installed, `cargo test -p outband-daemon --test browser`
//! (without them the tests say so and pass, unless `OUTBAND_REQUIRE_SERVERS=1`;
//! `OUTBAND_SCREENSHOTS=1` rewrites the README's screenshots).
//!
//! Every command takes `--url` (`OUTBAND_URL`, default
//! `sqlite://outband.db`), and only its own options besides (`--help` on a
//! command lists them). The consumer's, for `run`, `start` and `restart`:
//! `--queue` (repeatable; default every queue with a registered command),
//! `--processor simple|multi` (default `multi`), `-t/--threads` (5),
//! `-c/--concurrency` (100: async jobs run at once on the consumer's tokio
//! runtime, apart from the threads; feature `runtime`, on by default),
//! `--prefetch` (`auto`: jobs the multi processor claims ahead, beyond one
//! per thread, as many as its threads and async slots finish during one
//! call to the backend, up to 32; a number fixes it; the consumer holds at most
//! `threads + prefetch + concurrency` leases, `prefetch` 32 with `auto`,
//! `concurrency` counted only when it serves an async command),
//! `--completers` (its completing calls in flight at once; default
//! the backend's: 2, or 1 on SQLite), `--lease` (30s), `--grace-period`
//! (30s), `--retention` (7d), the djutils poll flags `-d` (initial wait,
//! 0.1 s, more than 0), `-b` (backoff factor, 1.15, at least 1) and `-m`
//! (longest wait, 2 s, at least `-d`), used where a backend cannot wake the
//! consumer itself, `-n` (no periodic commands), `--metrics ADDR` (serves
//! the consumer's Prometheus metrics at `http://ADDR/metrics`: see
//! [`outband_web::metrics`]; feature `dashboard`), `-l` (log file) and `-p`
//! (pid file).
//!
//! # Starting, and what is logged where
//!
//! - `run` logs to standard error, or to `-l LOG`. `start` logs to `-l LOG`,
//!   or, without it, to the pid file's path with the extension `.log`
//!   (`-p run/worker.pid` logs to `run/worker.log`). A log file's folder
//!   must exist: it is never created.
//! - Each line reads `TIME LEVEL TARGET: MESSAGE`. A line that cannot be
//!   written (a closed standard error, a full disk) is dropped: logging never
//!   stops or crashes the consumer.
//! - `start` waits until the daemon has taken its pid file, started its log
//!   and opened its backend. It exits 0 with the daemon's pid, or non-zero at
//!   once with the reason (a pid file or log that cannot be written, a
//!   database that does not exist, bad credentials).
//! - A backend that cannot be reached (Redis on a closed port) is a warning,
//!   on the terminal for `start` and in the log: the consumer starts and keeps
//!   trying, as it does for a backend lost later, so a consumer started
//!   before its backend comes up by itself.
//! - At start the consumer warns, in its log and on `start`'s terminal, when
//!   the binary registers no command of its own, and of each queue with
//!   pending jobs that none of its commands serves: the sign of a binary
//!   that does not link the crate defining its commands (see
//!   [`outband::Registry`]). Those jobs wait; `status` and `stats` warn of
//!   them too.
//!
//! # Signals
//!
//! | signal | effect |
//! |---|---|
//! | first SIGTERM or SIGINT | stop claiming; the jobs held (running, or claimed and waiting for a thread or an async slot) finish within the grace period |
//! | second SIGTERM or SIGINT, or the end of the grace period | release what still runs or waits back to the queue, its attempt not counted, dropping pending futures; exit 0 at once, cutting off the released jobs' commands where they are (`_exit`: no C library's exit handler may run under their threads) |
//! | SIGHUP | reopen the log file (for logrotate) |
//! | SIGTSTP | stop claiming and enqueueing periodic commands; running jobs go on (`quiet`) |
//!
//! # Feature flags
//!
//! | feature | default | links |
//! |---|---|---|
//! | `sqlite` | yes | the SQLite backend, for the default `sqlite://outband.db` |
//! | `postgres` | no | the PostgreSQL backend: `postgres://` |
//! | `mysql` | no | the MySQL/MariaDB backend: `mysql://` |
//! | `redis` | yes | the Redis backend: `redis://`, `redis+unix://`, `redis+cluster://` |
//! | `dashboard` | yes | the `dashboard` command: outband-web and a tokio runtime |
//! | `bench` | no | the `bench` command: the core benchmark and its built-in commands, which a binary without it neither links nor lists |
//!
//! # Programs with their own CLI
//!
//! [`Cli`] is a clap parser; embed its [`Command`] with `#[command(flatten)]`
//! and its [`Backend`] beside it, then call [`Command::run`], or build a
//! whole [`Cli`] and call [`Cli::run`]:
//!
//! ```
//! use clap::Parser;
//! use outband_daemon::{Cli, Command};
//! use std::process::ExitCode;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let pidfile = dir.path().join("consumer.pid");
//! let cli = Cli::try_parse_from([
//!     "my-app".as_ref(),
//!     "status".as_ref(),
//!     "-p".as_ref(),
//!     pidfile.as_os_str(),
//! ])
//! .unwrap();
//! assert!(matches!(cli.command, Some(Command::Status(_))));
//! // no daemon runs on that pid file: status exits 3, as an init script expects
//! assert_eq!(cli.run(), ExitCode::from(3));
//! ```

// Backends chosen by features; linking them registers their URL schemes.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use outband_diesel as _;
#[cfg(feature = "redis")]
use outband_redis as _;

mod admin;
mod cli;
mod consumer;
mod dashboard;
mod metrics;
mod periodic;
mod pidfile;
mod unserved;

pub use cli::{
    Backend, Cli, Command, ConsumerOptions, DashboardOptions, DeadCommand, PidOptions,
    ProcessorKind, Queues, StopOptions,
};
pub use pidfile::{PidFile, PidFileError, PidStatus};

use std::process::ExitCode;

/// Parses the process's arguments and runs the command: the whole consumer
/// program in one call. `--version` and the help name the program by the
/// file it was started from; [`main!`] also gives its version.
pub fn main() -> ExitCode {
    run_as(None)
}

/// The whole consumer program, as [`main()`], with `--version` showing the
/// calling crate's own name and version:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     outband_daemon::main!()
/// }
/// ```
#[macro_export]
macro_rules! main {
    () => {
        $crate::run_as(::core::option::Option::Some(::core::env!(
            "CARGO_PKG_VERSION"
        )))
    };
}

/// What [`main!`] expands to: parses the process's arguments as the
/// program named by its first one, at `version`, and runs the command.
#[doc(hidden)]
pub fn run_as(version: Option<&str>) -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map_or_else(
            || "outband".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
    match Cli::parse_as(&name, version, args) {
        Ok(cli) => cli.run(),
        Err(error) => error.exit(),
    }
}
