//! The outband consumer as a library: your binary calls it, so the commands
//! linked into your binary are the ones it runs.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! // the crate that defines your #[queue_command]s; linking it registers them
//! // use my_app_jobs as _;
//!
//! fn main() -> ExitCode {
//!     outband_daemon::main()
//! }
//! ```
//!
//! That binary then understands:
//!
//! | command | what it does |
//! |---|---|
//! | `run` (or `-f`) | consumes in the foreground, for systemd and containers |
//! | `start -l LOG -p PIDFILE` | consumes as a Unix daemon, logging to `LOG` |
//! | `stop -p PIDFILE` | SIGTERM, then waits up to the grace period and reports how it ended |
//! | `status -p PIDFILE` | exit 0 running, 1 dead but the pid file exists, 3 not running |
//! | `restart` | `stop`, then `start` |
//! | `quiet -p PIDFILE` | the daemon stops claiming; running jobs go on |
//! | `commands` | the registered commands, with their queue and options |
//! | `stats` | per queue: counts per state, jobs/s, run-time p50 and p99 |
//! | `dead list \| retry ID… \| delete ID…` | the dead-letter state |
//! | `flush --queue Q [--yes]` | deletes a queue's pending jobs, after asking |
//! | `bench` | the core benchmark, with a built-in no-op command |
//!
//! Options, each also settable where noted: `--url` (`OUTBAND_URL`, default
//! `sqlite://outband.db`), `--queue` (repeatable; default every queue with a
//! registered command), `--processor simple|multi` (default `multi`),
//! `-t/--threads` (5), `--prefetch` (0: jobs the multi processor claims
//! ahead, beyond one per thread), `--completers` (its recording calls in
//! flight at once; default the backend's: 2, or 1 on SQLite), `--lease` (30s), `--grace-period` (30s), `--retention`
//! (7d), the djutils poll flags `-d` (initial wait 0.1 s), `-b` (backoff
//! 1.15) and `-m` (max wait 60 s), used where a backend cannot wake the
//! consumer itself, `-n` (no periodic commands), `-l` (log file) and `-p`
//! (pid file).
//!
//! # Signals
//!
//! | signal | effect |
//! |---|---|
//! | first SIGTERM or SIGINT | stop claiming; the jobs held (running, or claimed and waiting for a thread) finish within the grace period |
//! | second SIGTERM or SIGINT, or the end of the grace period | release what still runs or waits back to the queue, its attempt not counted; exit 0 at once, cutting off the released jobs' commands where they are (`_exit`: no C library's exit handler may run under their threads) |
//! | SIGHUP | reopen the log file (for logrotate) |
//! | SIGTSTP | stop claiming; running jobs go on (`quiet`) |
//!
//! # Feature flags
//!
//! | feature | default | links |
//! |---|---|---|
//! | `sqlite` | yes | the SQLite backend, for the default `sqlite://outband.db` |
//! | `postgres` | no | the PostgreSQL backend: `postgres://` |
//! | `mysql` | no | the MySQL/MariaDB backend: `mysql://` |
//! | `redis` | yes | the Redis backend: `redis://`, `redis+unix://`, `redis+cluster://` |
//!
//! # Programs with their own CLI
//!
//! [`Cli`] is a clap parser; embed it with `#[command(flatten)]`, or build
//! one and call [`Cli::run`]:
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
//! assert!(matches!(cli.command, Some(Command::Status)));
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
mod periodic;
mod pidfile;

pub use cli::{Cli, Command, DeadCommand, Options, ProcessorKind};
pub use pidfile::{PidFile, PidFileError, PidStatus};

use std::process::ExitCode;

/// Parses the process's arguments and runs the command: the whole consumer
/// program in one call.
pub fn main() -> ExitCode {
    use clap::Parser;
    Cli::parse().run()
}
