//! The command line, with clap.
//!
//! Each command takes only its own options: the consumer's settings belong
//! to `run`, `start` and `restart`, the pid file to the commands that steer
//! a daemon, and `--url` (with `OUTBAND_URL`), the one option every command
//! shares, is given once for all of them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use outband::{JobState, Prefetch};

/// The outband consumer: runs the queued commands linked into this program.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "The outband consumer: runs the queued commands linked into this program",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The backend, for every command.
    #[command(flatten)]
    pub backend: Backend,
    /// The consumer's settings, for `run` given without its name.
    #[command(flatten)]
    pub consumer: ConsumerOptions,
    /// Run in the foreground: the same as `run`.
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// What to do; `-f` alone, or nothing, means `run`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where the jobs are: the one option every command shares.
#[derive(Clone, Args)]
#[command(next_help_heading = "Backend")]
pub struct Backend {
    /// The backend's URL [default: sqlite://outband.db].
    #[arg(long, env = "OUTBAND_URL", global = true, hide_env_values = true)]
    pub url: Option<String>,
}

/// Shows the URL with its password hidden.
impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self
            .url
            .as_deref()
            .map(outband::backend::url::hide_password);
        f.debug_struct("Backend").field("url", &url).finish()
    }
}

impl Backend {
    /// The backend's URL when none is given.
    pub const DEFAULT_URL: &str = "sqlite://outband.db";

    /// The URL given, or [`DEFAULT_URL`](Self::DEFAULT_URL).
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(Self::DEFAULT_URL)
    }
}

/// Which processor runs the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcessorKind {
    /// One job at a time, in enqueue order.
    Simple,
    /// Up to `--threads` jobs at once.
    Multi,
}

/// The consumer's settings: the options of `run`, `start` and `restart`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Consumer")]
pub struct ConsumerOptions {
    /// A queue to consume (repeatable); default: every queue with a registered command.
    #[arg(long = "queue")]
    pub queues: Vec<String>,
    /// The processor.
    #[arg(long, value_enum, default_value_t = ProcessorKind::Multi)]
    pub processor: ProcessorKind,
    /// Jobs the multi processor runs at once.
    #[arg(short = 't', long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
    /// Jobs the multi processor claims ahead, beyond one per thread: fewer
    /// round trips for short jobs, and up to that many more jobs run again
    /// after a crash. `auto` (the default) claims ahead what the threads
    /// finish during one call to the backend, up to 32, none for jobs
    /// longer than a call; a number claims that many ahead whatever the
    /// jobs, 0 only for a free thread.
    #[arg(long, default_value = "auto", value_parser = prefetch)]
    pub prefetch: Prefetch,
    /// Async jobs (of `async fn` commands) run at once on the consumer's
    /// async runtime, apart from `--threads`: a job waiting on I/O holds a
    /// slot, not a thread. The consumer holds at most `threads + prefetch +
    /// concurrency` leases, the last counted only when a queue it serves
    /// has an async command.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// Completing calls (each claiming the next jobs) the multi
    /// processor may have in flight at once, each serving its share of the
    /// leases; default: the backend's choice (2, or 1 on SQLite).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub completers: Option<u64>,
    /// How long a claim leases a job; heartbeats extend it.
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub lease: Duration,
    /// How long the first SIGTERM lets running jobs finish.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,
    /// How long done jobs are kept before maintenance purges them.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub retention: Duration,
    /// Initial wait, in seconds, between polls of a backend that cannot wake
    /// the consumer (more than 0).
    #[arg(short = 'd', long = "delay", default_value_t = 0.1, value_parser = seconds, allow_negative_numbers = true)]
    pub delay: f64,
    /// Factor by which the wait grows after each empty poll (1 or more).
    #[arg(short = 'b', long = "backoff", default_value_t = 1.15, value_parser = factor, allow_negative_numbers = true)]
    pub backoff: f64,
    /// Longest wait, in seconds, between polls (at least the initial wait):
    /// an idle consumer on a backend that cannot wake it finds a new job at
    /// most this long after it was enqueued.
    #[arg(short = 'm', long = "max-delay", default_value_t = 2.0, value_parser = seconds, allow_negative_numbers = true)]
    pub max_delay: f64,
    /// Do not enqueue periodic commands.
    #[arg(short = 'n', long = "no-periodic")]
    pub no_periodic: bool,
    /// Serves this consumer's Prometheus metrics at `http://ADDR/metrics`:
    /// its jobs processed and failed, run times, claim and enqueue latency,
    /// and the backend's counts (feature `dashboard`). Read-only, and on the
    /// address given: `127.0.0.1:9141` for this host only, `0.0.0.0:9141`
    /// for a Prometheus elsewhere.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// The log file (reopened on SIGHUP); its folder must exist. Default:
    /// standard error for `run`, and for `start` the pid file's path with
    /// the extension `.log`.
    #[arg(short = 'l', long = "logfile")]
    pub logfile: Option<PathBuf>,
    /// The pid file: created and locked while the consumer runs; `start`
    /// needs one.
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
}

impl ConsumerOptions {
    /// Checks what one flag cannot check alone.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_delay < self.delay {
            return Err(format!(
                "-m/--max-delay {} is below -d/--delay {}: the longest wait must be at least the first",
                self.max_delay, self.delay
            ));
        }
        Ok(())
    }

    /// The log file a daemon writes to: `-l`, or beside its pid file.
    pub(crate) fn daemon_log(&self) -> Option<PathBuf> {
        self.logfile
            .clone()
            .or_else(|| self.pidfile.as_ref().map(|p| p.with_extension("log")))
    }
}

/// A pid file, for the commands that steer a running daemon.
#[derive(Debug, Clone, Args)]
pub struct PidOptions {
    /// The daemon's pid file.
    #[arg(short = 'p', long = "pidfile", required = true)]
    pub pidfile: PathBuf,
}

/// The options of `stop`.
#[derive(Debug, Clone, Args)]
pub struct StopOptions {
    /// The daemon's pid file.
    #[arg(short = 'p', long = "pidfile", required = true)]
    pub pidfile: PathBuf,
    /// How long to wait for the daemon to end, beyond a little for its release.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,
    /// Accepted and ignored, as djutils' `stop -l LOG -p PIDFILE` is written.
    #[arg(short = 'l', long = "logfile", hide = true)]
    pub logfile: Option<PathBuf>,
}

/// The queues a command reports on or changes.
#[derive(Debug, Clone, Args)]
pub struct Queues {
    /// A queue (repeatable); default: every queue the backend holds.
    #[arg(long = "queue")]
    pub queues: Vec<String>,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Consume in the foreground (for systemd and containers).
    Run(ConsumerOptions),
    /// Consume as a Unix daemon; needs -p.
    Start(ConsumerOptions),
    /// Send SIGTERM and wait up to the grace period for the daemon to end.
    Stop(StopOptions),
    /// Exit 0 if the daemon runs, 1 if it died leaving its pid file, 3 if not running.
    Status(PidOptions),
    /// Stop, then start.
    Restart(ConsumerOptions),
    /// Make the daemon stop claiming and scheduling; running jobs go on (SIGTSTP).
    Quiet(PidOptions),
    /// List the registered commands.
    Commands,
    /// Per queue: counts per state, jobs/s, run-time p50 and p99, and
    /// whether it is paused.
    Stats(Queues),
    /// List the consumers registered in the backend: id, host, pid,
    /// queues, threads/concurrency, jobs running, when started, when last
    /// seen, and whether alive or gone (its heartbeats stopped).
    Consumers,
    /// Show jobs: state, attempts, timings, last error, and the arguments
    /// and result as JSON through the command's own types.
    Job {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// List jobs in one state, newest first: id, queue, command, attempts,
    /// when enqueued, and progress or last error.
    Jobs(JobsOptions),
    /// Cancel jobs: a pending one at once; a running one is stopped by its
    /// consumer, at once where the backend pushes cancels, else at its next
    /// heartbeat; a finished one is left as it is.
    Cancel {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<u64>,
        /// Why, recorded as the job's last error.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
    /// Pause queues: every consumer stops claiming from them at its next
    /// claim, running jobs finish, enqueues are accepted. The pause is kept
    /// in the backend, across consumer restarts, until `resume`.
    Pause {
        /// Queue names; one that holds no job yet may be paused.
        #[arg(required = true)]
        queues: Vec<String>,
    },
    /// Resume paused queues: consumers claim from them again.
    Resume {
        /// Queue names.
        #[arg(required = true)]
        queues: Vec<String>,
    },
    /// Inspect the dead-letter state.
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Delete a queue's pending jobs.
    Flush {
        /// The queues to empty (repeatable).
        #[arg(long = "queue", required = true)]
        queues: Vec<String>,
        /// Do not ask first.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Serve the web dashboard of the backend: queues, jobs, dead letters,
    /// periodic commands (needs outband-daemon's `dashboard` feature, on by
    /// default).
    Dashboard(DashboardOptions),
    /// Run the core benchmark on the backend with a built-in no-op command
    /// (needs outband-daemon's `bench` feature).
    Bench {
        /// Jobs per run.
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
    },
}

/// The options of `dashboard`.
#[derive(Clone, Args)]
pub struct DashboardOptions {
    /// The address to listen on; an address other than loopback needs
    /// --token or --insecure.
    #[arg(long, default_value = DashboardOptions::DEFAULT_BIND)]
    pub bind: String,
    /// The access token every request must carry (`?token=` once in a
    /// browser, or `Authorization: Bearer`).
    #[arg(long, env = "OUTBAND_DASHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Serve an address other than loopback without a token: anyone who
    /// reaches the port may use the dashboard.
    #[arg(long, conflicts_with = "token")]
    pub insecure: bool,
    /// Show no action and refuse every change.
    #[arg(long)]
    pub read_only: bool,
}

impl DashboardOptions {
    /// Where the dashboard listens when `--bind` is not given.
    pub const DEFAULT_BIND: &str = "127.0.0.1:9140";
}

/// Shows the token hidden.
impl std::fmt::Debug for DashboardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOptions")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("insecure", &self.insecure)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// What `jobs` lists.
#[derive(Debug, Clone, Args)]
pub struct JobsOptions {
    /// pending, running, done, dead or cancelled.
    #[arg(long, default_value = "pending", value_parser = state)]
    pub state: JobState,
    /// The queues to list.
    #[command(flatten)]
    pub queues: Queues,
    /// Only jobs of this command (its registered name).
    #[arg(long)]
    pub command: Option<String>,
    /// At most this many per queue.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub limit: u64,
    /// Only jobs below this id: the `--before` a previous listing printed
    /// to go on with.
    #[arg(long)]
    pub before: Option<u64>,
}

/// The dead-letter commands.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadCommand {
    /// List dead jobs, most recent first.
    List {
        /// The queues to list.
        #[command(flatten)]
        queues: Queues,
        /// At most this many per queue.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Send dead jobs back to pending, their attempts reset.
    Retry {
        /// Job ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<u64>,
        /// Every dead job of the queues given with --queue, or of every queue.
        #[arg(long)]
        all: bool,
        /// With --all: the queues to retry.
        #[command(flatten)]
        queues: Queues,
    },
    /// Delete dead jobs.
    Delete {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
}

fn state(text: &str) -> Result<JobState, String> {
    JobState::parse(text).ok_or_else(|| {
        let names: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!("must be one of {}", names.join(", "))
    })
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        Ok(_) => Err("must be a number of seconds greater than 0".to_owned()),
        Err(_) => Err("must be a number of seconds, such as 0.1".to_owned()),
    }
}

fn factor(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 1.0 => Ok(value),
        Ok(_) => Err("must be 1 or more: the wait between polls never shrinks".to_owned()),
        Err(_) => Err("must be a number, such as 1.15".to_owned()),
    }
}

/// `auto`, the default adaptive prefetch, or a fixed number of jobs.
fn prefetch(text: &str) -> Result<Prefetch, String> {
    if text == "auto" {
        return Ok(Prefetch::default());
    }
    text.parse()
        .map(Prefetch::Fixed)
        .map_err(|_| "must be `auto` or a number of jobs, such as 28".to_owned())
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(Duration::ZERO) => Err("must be longer than 0".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(error.to_string()),
    }
}

impl Cli {
    /// Parses `args` as the program `name` at `version` would: `--version`
    /// and the help name the program, not this library, whose version
    /// follows the program's.
    pub fn parse_as<I, T>(name: &str, version: Option<&str>, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let ours = concat!("(outband-daemon ", env!("CARGO_PKG_VERSION"), ")");
        let command = Self::command()
            .name(name.to_owned())
            .bin_name(name.to_owned())
            .version(match version {
                Some(version) => format!("{version} {ours}"),
                None => ours.to_owned(),
            });
        let matches: ArgMatches = command.try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }

    /// Runs the parsed command and returns the process's exit status.
    pub fn run(self) -> ExitCode {
        // `-f` is djutils' foreground flag: with no command it, too, means `run`
        let command = self.command.unwrap_or(Command::Run(self.consumer));
        command.run(&self.backend)
    }
}

impl Command {
    /// Runs the command on `backend` and returns the process's exit status.
    pub fn run(self, backend: &Backend) -> ExitCode {
        let url = backend.url();
        let result = match self {
            Self::Run(options) => crate::consumer::run_foreground(url, &options),
            Self::Start(options) => crate::consumer::start_daemon(url, &options),
            Self::Stop(options) => crate::admin::stop(&options.pidfile, options.grace_period),
            Self::Status(options) => crate::admin::status(backend.url.as_deref(), &options.pidfile),
            Self::Restart(options) => {
                match options.pidfile.as_deref() {
                    Some(pidfile) => crate::admin::stop(pidfile, options.grace_period),
                    None => Err("restart needs the pid file: -p PIDFILE".into()),
                }
            }
            .and_then(|_| crate::consumer::start_daemon(url, &options)),
            Self::Quiet(options) => crate::admin::quiet(&options.pidfile),
            Self::Commands => crate::admin::commands(),
            Self::Stats(queues) => crate::admin::stats(url, &queues.queues),
            Self::Consumers => crate::admin::consumers(url),
            Self::Job { ids } => crate::admin::job(url, &ids),
            Self::Jobs(options) => crate::admin::list(url, &options),
            Self::Cancel { ids, reason } => crate::admin::cancel(url, &ids, &reason),
            Self::Pause { queues } => crate::admin::pause(url, &queues),
            Self::Resume { queues } => crate::admin::resume(url, &queues),
            Self::Dead(dead) => crate::admin::dead(url, &dead),
            Self::Flush { queues, yes } => crate::admin::flush(url, &queues, yes),
            Self::Dashboard(options) => crate::dashboard::run(url, &options),
            Self::Bench { jobs } => crate::admin::bench(url, jobs),
        };
        match result {
            Ok(code) => ExitCode::from(code),
            Err(error) => {
                crate::consumer::say(&format!("outband: {error}"));
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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([&["outband"], args].concat())
    }

    fn consumer(args: &[&str]) -> ConsumerOptions {
        match parse(&[&["run"], args].concat()).unwrap().command {
            Some(Command::Run(options)) => options,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn the_prefetch_is_adaptive_unless_a_number_fixes_it() {
        assert_eq!(consumer(&[]).prefetch, Prefetch::default());
        assert_eq!(
            consumer(&["--prefetch", "auto"]).prefetch,
            Prefetch::default()
        );
        assert_eq!(
            consumer(&["--prefetch", "28"]).prefetch,
            Prefetch::Fixed(28)
        );
        let error = parse(&["run", "--prefetch", "many"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--prefetch") && error.contains("`auto` or a number"),
            "{error}"
        );
    }

    #[test]
    fn completers_are_the_backends_unless_given_and_at_least_one() {
        assert_eq!(consumer(&[]).completers, None);
        assert_eq!(consumer(&["--completers", "3"]).completers, Some(3));
        assert!(parse(&["run", "--completers", "0"]).is_err());
    }

    #[test]
    fn poll_waits_that_shrink_or_go_below_zero_are_refused_with_their_flag() {
        for (args, flag, says) in [
            (&["-d=-1"][..], "--delay", "greater than 0"),
            (&["-d", "-1"], "--delay", "greater than 0"),
            (&["-d", "0"], "--delay", "greater than 0"),
            (&["-m", "0"], "--max-delay", "greater than 0"),
            (&["-b", "0.5"], "--backoff", "never shrinks"),
            (&["-d", "x"], "--delay", "number of seconds"),
        ] {
            let error = parse(&[&["run"], args].concat()).unwrap_err().to_string();
            assert!(
                error.contains(flag) && error.contains(says),
                "{args:?}: {error}"
            );
        }
        let options = consumer(&["-d", "2", "-m", "1"]);
        let error = options.validate().unwrap_err();
        assert!(error.contains("--max-delay"), "{error}");
        let options = consumer(&["-d", "0.5", "-b", "1", "-m", "0.5"]);
        assert_eq!(
            (options.delay, options.backoff, options.max_delay),
            (0.5, 1.0, 0.5)
        );
        options.validate().unwrap();
    }

    /// A backend that cannot wake an idle consumer leaves it polling: by
    /// default, never more than a few seconds apart.
    #[test]
    fn the_default_poll_waits_stay_within_a_few_seconds() {
        let options = consumer(&[]);
        assert_eq!(
            (options.delay, options.backoff, options.max_delay),
            (0.1, 1.15, 2.0)
        );
        options.validate().unwrap();
    }

    #[test]
    fn each_command_takes_its_own_options_only() {
        assert!(parse(&["status", "-t", "3", "-p", "x.pid"]).is_err());
        assert!(parse(&["stats", "-d", "1"]).is_err());
        assert!(parse(&["status"]).is_err(), "status needs its pid file");
        let cli = parse(&["status", "-p", "x.pid", "--url", "redis://h/"]).unwrap();
        assert_eq!(cli.backend.url(), "redis://h/");
        let cli = parse(&["stats"]).unwrap();
        assert_eq!(cli.backend.url(), Backend::DEFAULT_URL);
        // djutils' `stop -l LOG -p PIDFILE` still parses
        assert!(parse(&["stop", "-l", "x.log", "-p", "x.pid"]).is_ok());
        // the consumer's options alone, or with -f, mean `run`
        let cli = parse(&["-t", "3", "-f"]).unwrap();
        assert!(cli.command.is_none() && cli.foreground);
        assert_eq!(cli.consumer.threads, 3);
        // and they do not mix with another command
        assert!(parse(&["-t", "3", "status", "-p", "x.pid"]).is_err());
    }

    #[test]
    fn the_help_of_a_command_shows_its_own_options() {
        let mut command = Cli::command();
        // global options reach the subcommands when the command is built
        command.build();
        let status = command.find_subcommand_mut("status").unwrap();
        let help = status.render_help().to_string();
        assert!(
            help.contains("--pidfile") && help.contains("--url"),
            "{help}"
        );
        assert!(
            !help.contains("--threads") && !help.contains("--delay"),
            "{help}"
        );
    }

    #[test]
    fn the_version_names_the_program() {
        let error =
            Cli::parse_as("my-worker", Some("2.3.4"), ["my-worker", "--version"]).unwrap_err();
        let shown = error.to_string();
        assert!(shown.starts_with("my-worker 2.3.4"), "{shown}");
        assert!(
            shown.contains(concat!("outband-daemon ", env!("CARGO_PKG_VERSION"))),
            "{shown}"
        );
        let error = Cli::parse_as("my-worker", None, ["my-worker", "-V"]).unwrap_err();
        assert!(
            error.to_string().starts_with("my-worker (outband-daemon "),
            "{error}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let backend = Backend {
            url: Some("postgres://app:s3cret@db:5432/jobs".to_owned()),
        };
        let shown = format!("{backend:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/jobs"), "{shown}");
    }
}
