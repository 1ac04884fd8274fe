//! The command line, with clap.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The outband consumer: runs the queued commands linked into this program.
#[derive(Debug, Clone, Parser)]
#[command(version, about = "The outband consumer: runs the queued commands linked into this program", long_about = None)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub options: Options,
    /// What to do; `-f` alone, or nothing, means `run`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Which processor runs the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcessorKind {
    /// One job at a time, in enqueue order.
    Simple,
    /// Up to `--threads` jobs at once.
    Multi,
}

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The backend's URL.
    #[arg(
        long,
        env = "OUTBAND_URL",
        default_value = "sqlite://outband.db",
        global = true
    )]
    pub url: String,
    /// A queue to consume (repeatable); default: every queue with a registered command.
    #[arg(long = "queue", global = true)]
    pub queues: Vec<String>,
    /// The processor.
    #[arg(long, value_enum, default_value_t = ProcessorKind::Multi, global = true)]
    pub processor: ProcessorKind,
    /// Jobs the multi processor runs at once.
    #[arg(short = 't', long, default_value_t = 5, global = true)]
    pub threads: usize,
    /// Jobs the multi processor claims ahead, beyond one per thread: fewer
    /// round trips for short jobs, and up to that many more jobs run again
    /// after a crash.
    #[arg(long, default_value_t = 0, global = true)]
    pub prefetch: usize,
    /// Calls recording outcomes (and claiming the next jobs) the multi
    /// processor may have in flight at once, each serving its share of the
    /// leases; default: the backend's choice (2, or 1 on SQLite).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub completers: Option<u64>,
    /// How long a claim leases a job; heartbeats extend it.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub lease: Duration,
    /// How long the first SIGTERM lets running jobs finish.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub grace_period: Duration,
    /// How long done jobs are kept before the manager purges them.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub retention: Duration,
    /// Initial wait, in seconds, between polls of a backend that cannot wake the consumer.
    #[arg(short = 'd', long = "delay", default_value_t = 0.1, global = true)]
    pub delay: f64,
    /// Factor by which the wait grows after each empty poll.
    #[arg(short = 'b', long = "backoff", default_value_t = 1.15, global = true)]
    pub backoff: f64,
    /// Longest wait, in seconds, between polls.
    #[arg(short = 'm', long = "max-delay", default_value_t = 60.0, global = true)]
    pub max_delay: f64,
    /// Do not enqueue periodic commands.
    #[arg(short = 'n', long = "no-periodic", global = true)]
    pub no_periodic: bool,
    /// Run in the foreground: the same as `run`.
    #[arg(short = 'f', long, global = true)]
    pub foreground: bool,
    /// Log to this file instead of standard error (reopened on SIGHUP).
    #[arg(short = 'l', long = "logfile", global = true)]
    pub logfile: Option<PathBuf>,
    /// The pid file: created and locked while the consumer runs.
    #[arg(short = 'p', long = "pidfile", global = true)]
    pub pidfile: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Consume in the foreground (for systemd and containers).
    Run,
    /// Consume as a Unix daemon; needs -p, and -l for a log.
    Start,
    /// Send SIGTERM and wait up to the grace period for the daemon to end.
    Stop,
    /// Exit 0 if the daemon runs, 1 if it died leaving its pid file, 3 if not running.
    Status,
    /// Stop, then start.
    Restart,
    /// Make the daemon stop claiming; running jobs go on (SIGTSTP).
    Quiet,
    /// List the registered commands.
    Commands,
    /// Per queue: counts per state, jobs/s, run-time p50 and p99.
    Stats,
    /// Inspect the dead-letter state.
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Delete a queue's pending jobs.
    Flush {
        /// Do not ask first.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Run the core benchmark on the backend with a built-in no-op command.
    Bench {
        /// Jobs per run.
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
    },
}

/// The dead-letter commands.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadCommand {
    /// List dead jobs, most recent first.
    List {
        /// At most this many per queue.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Send dead jobs back to pending, their attempts reset.
    Retry {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Delete dead jobs.
    Delete {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
}

impl Cli {
    /// Runs the parsed command and returns the process's exit status.
    pub fn run(self) -> ExitCode {
        // `-f` is djutils' foreground flag: with no command it, too, means `run`
        let result = match self.command.unwrap_or(Command::Run) {
            Command::Run => crate::consumer::run_foreground(&self.options),
            Command::Start => crate::consumer::start_daemon(&self.options),
            Command::Stop => crate::admin::stop(&self.options),
            Command::Status => crate::admin::status(&self.options),
            Command::Restart => crate::admin::stop(&self.options)
                .and_then(|_| crate::consumer::start_daemon(&self.options)),
            Command::Quiet => crate::admin::quiet(&self.options),
            Command::Commands => crate::admin::commands(),
            Command::Stats => crate::admin::stats(&self.options),
            Command::Dead(dead) => crate::admin::dead(&self.options, &dead),
            Command::Flush { yes } => crate::admin::flush(&self.options, yes),
            Command::Bench { jobs } => crate::admin::bench(&self.options, jobs),
        };
        match result {
            Ok(code) => ExitCode::from(code),
            Err(error) => {
                eprintln!("outband: {error}");
                ExitCode::from(2)
            }
        }
    }
}

/// A failure of a CLI command, printed as one line.
pub(crate) type CliResult = Result<u8, Box<dyn std::error::Error>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completers_are_the_backends_unless_given_and_at_least_one() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["outband"], args].concat());
        assert_eq!(parse(&[]).unwrap().options.completers, None);
        assert_eq!(
            parse(&["--completers", "3"]).unwrap().options.completers,
            Some(3)
        );
        assert!(parse(&["--completers", "0"]).is_err());
    }
}
