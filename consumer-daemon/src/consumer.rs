//! Running the consumer: in the foreground or as a daemon, with signals, the
//! manager thread, periodic commands and logging.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flexi_logger::{FileSpec, Logger, LoggerHandle};
use outband::{BaseQueue, MultiProcessor, ProcessorConfig, SimpleProcessor, StopReport};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGTSTP};
use signal_hook::iterator::Signals;

use crate::cli::{CliResult, Options, ProcessorKind};
use crate::pidfile::PidFile;

/// `run`, and the daemon once forked: consumes in this process until
/// signalled.
pub(crate) fn run_foreground(options: &Options) -> CliResult {
    let pidfile = options
        .pidfile
        .as_deref()
        .map(PidFile::acquire)
        .transpose()?;
    let logger = start_logging(options.logfile.as_deref())?;
    consume(options, &logger, pidfile)
}

/// `start`: forks into a daemon that consumes, and returns once it runs.
pub(crate) fn start_daemon(options: &Options) -> CliResult {
    let Some(pidfile) = options.pidfile.as_deref() else {
        return Err("start needs a pid file: -p PIDFILE".into());
    };
    // Refuse before forking, so the error reaches the caller's terminal.
    let stale = match PidFile::status(pidfile)? {
        crate::PidStatus::Running(pid) => {
            let pid = pid.map_or("unknown".to_owned(), |p| p.to_string());
            return Err(format!(
                "another consumer is already running with pid file {} (pid {pid})",
                pidfile.display()
            )
            .into());
        }
        crate::PidStatus::Dead(pid) => pid,
        crate::PidStatus::NotRunning => None,
    };
    let cwd = std::env::current_dir()?;
    let mut options = options.clone();
    let absolute = |path: &Path| -> PathBuf { cwd.join(path) };
    options.pidfile = Some(absolute(pidfile));
    options.logfile = options.logfile.as_deref().map(absolute);
    if let Some(path) = options.url.strip_prefix("sqlite://")
        && !path.starts_with('/')
        && !path.starts_with(':')
    {
        options.url = format!("sqlite://{}", absolute(Path::new(path)).display());
    }

    // Daemonize before any thread starts: fork keeps only the calling thread.
    match daemonize::Daemonize::new()
        .working_directory(&cwd)
        .execute()
    {
        daemonize::Outcome::Parent(Ok(_)) => {
            let pidfile = options.pidfile.as_deref().unwrap_or(pidfile);
            let pid = wait_until_started(pidfile, stale, Duration::from_secs(30))?;
            println!("outband consumer started, pid {pid}");
            Ok(0)
        }
        daemonize::Outcome::Parent(Err(error)) => {
            Err(format!("daemonizing failed: {error}").into())
        }
        daemonize::Outcome::Child(Ok(_)) => {
            let code = match run_foreground(&options) {
                Ok(code) => code,
                Err(error) => {
                    log::error!("the consumer failed: {error}");
                    1
                }
            };
            std::process::exit(i32::from(code));
        }
        daemonize::Outcome::Child(Err(error)) => {
            Err(format!("daemonizing failed in the child: {error}").into())
        }
    }
}

/// The parent of `start` waits up to `timeout` for the daemon to hold its
/// pid file, and returns the daemon's pid.
///
/// The daemon locks the file before its pid replaces the `stale` one of a
/// daemon that died, and a killed daemon's pid stays alive until its zombie
/// is reaped: the stale pid is never taken for the new daemon's.
fn wait_until_started(
    pidfile: &Path,
    stale: Option<u32>,
    timeout: Duration,
) -> Result<u32, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let crate::PidStatus::Running(Some(pid)) = PidFile::status(pidfile)?
            && Some(pid) != stale
            && crate::pidfile::is_alive(pid)
        {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "the consumer did not take its pid file {} within {timeout:?}; see its log",
        pidfile.display()
    )
    .into())
}

fn start_logging(logfile: Option<&Path>) -> Result<LoggerHandle, Box<dyn std::error::Error>> {
    let logger = Logger::try_with_env_or_str("info")?.format(flexi_logger::detailed_format);
    let logger = match logfile {
        Some(path) => logger.log_to_file(FileSpec::try_from(path)?).append(),
        None => logger.log_to_stderr(),
    };
    Ok(logger.start()?)
}

/// One of the two processors, behind one face.
enum Processor {
    Simple(SimpleProcessor),
    Multi(MultiProcessor),
}

impl Processor {
    fn start(&self) {
        match self {
            Self::Simple(p) => p.start(),
            Self::Multi(p) => p.start(),
        }
    }

    fn stop_claiming(&self) {
        match self {
            Self::Simple(p) => p.stop_claiming(),
            Self::Multi(p) => p.stop_claiming(),
        }
    }

    fn running(&self) -> usize {
        match self {
            Self::Simple(p) => p.running(),
            Self::Multi(p) => p.running(),
        }
    }

    fn held(&self) -> usize {
        match self {
            Self::Simple(p) => p.held(),
            Self::Multi(p) => p.held(),
        }
    }

    fn stop_within(&self, grace: Duration) -> StopReport {
        match self {
            Self::Simple(p) => p.stop_within(grace),
            Self::Multi(p) => p.stop_within(grace),
        }
    }

    fn queues(&self) -> &[String] {
        match self {
            Self::Simple(p) => p.queues(),
            Self::Multi(p) => p.queues(),
        }
    }
}

/// Consumes until the signals say stop: the process's main loop.
fn consume(options: &Options, logger: &LoggerHandle, pidfile: Option<PidFile>) -> CliResult {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGTSTP])?;
    let queue = outband::open(&options.url)?;
    let mut config = ProcessorConfig::default()
        .queues(options.queues.iter().cloned())
        .lease(options.lease)
        .max_threads(options.threads)
        .prefetch(options.prefetch)
        .wait_time(Duration::from_secs_f64(options.delay.max(0.001)))
        .wait_backoff(
            options.backoff,
            Duration::from_secs_f64(options.max_delay.max(options.delay)),
        );
    if let Some(completers) = options.completers {
        config = config.completers(usize::try_from(completers).unwrap_or(usize::MAX));
    }
    let processor = match options.processor {
        ProcessorKind::Simple => {
            Processor::Simple(SimpleProcessor::new(Arc::clone(&queue), config)?)
        }
        ProcessorKind::Multi => Processor::Multi(MultiProcessor::new(Arc::clone(&queue), config)?),
    };
    let background = Background::start(&queue, options);
    processor.start();
    log::info!(
        "outband consumer {} started: pid {}, {:?} processor, queues {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        options.processor,
        processor.queues().join(", ")
    );

    let mut stopping: Option<Instant> = None;
    'signals: loop {
        for signal in signals.pending() {
            match signal {
                SIGTERM | SIGINT if stopping.is_some() => {
                    log::info!("second stop signal: releasing running jobs");
                    break 'signals;
                }
                SIGTERM | SIGINT => {
                    log::info!(
                        "stop signal: no new claims; waiting up to {:?} for {} running jobs \
                         and {} more claimed",
                        options.grace_period,
                        processor.running(),
                        processor.held().saturating_sub(processor.running())
                    );
                    processor.stop_claiming();
                    stopping = Some(Instant::now() + options.grace_period);
                }
                SIGHUP => match logger.reopen_output() {
                    Ok(()) => log::info!("log file reopened"),
                    Err(error) => eprintln!("outband: reopening the log file failed: {error}"),
                },
                SIGTSTP => {
                    log::info!("quiet: no new claims; running jobs go on");
                    processor.stop_claiming();
                }
                _ => {}
            }
        }
        // Every job held, not only those running: the jobs of a claim are
        // held a moment before their threads start them, and jobs claimed
        // ahead wait for a thread. Both run before the consumer exits.
        match stopping {
            Some(_) if processor.held() == 0 => break,
            Some(deadline) if Instant::now() >= deadline => {
                log::info!("grace period over: releasing running jobs");
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    // releases whatever still runs; nothing when the running jobs finished
    let report = processor.stop_within(Duration::ZERO);
    background.stop();
    log::info!(
        "outband consumer stopped: {} running jobs released back to the queue",
        report.released
    );
    if let Some(pidfile) = pidfile {
        pidfile.remove();
    }
    logger.flush();
    if report.released > 0 {
        // the released jobs' commands still run on their threads
        exit_now(0);
    }
    Ok(0)
}

/// Ends the process with `code` at once, without running the C libraries'
/// exit handlers: for when threads still run jobs, as after the grace
/// period. Those handlers free what the threads may be using: OpenSSL's,
/// under libpq, freed its locks while a job thread opened a PostgreSQL
/// connection, and the process died of SIGSEGV instead of exiting 0.
/// Whatever must survive is written first: the log is flushed, the pid file
/// removed, and the released jobs are back in the queue.
#[allow(unsafe_code)]
fn exit_now(code: u8) -> ! {
    // SAFETY: `_exit` ends the process and every thread in it; nothing of
    // this process runs afterwards, so nothing can observe what it skips.
    unsafe { libc::_exit(i32::from(code)) }
}

/// The manager and the periodic scheduler, on threads of their own.
struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
}

impl Background {
    fn start(queue: &Arc<dyn BaseQueue>, options: &Options) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut threads = Vec::new();
        let (q, s) = (Arc::clone(queue), Arc::clone(&stop));
        let (period, retention) = (options.lease / 2, options.retention);
        threads.push(
            std::thread::Builder::new()
                .name("outband-manager".into())
                .spawn(move || manager_loop(&*q, &s, period, retention))
                .expect("spawning a thread"),
        );
        if !options.no_periodic {
            let (q, s) = (Arc::clone(queue), Arc::clone(&stop));
            threads.push(
                std::thread::Builder::new()
                    .name("outband-periodic".into())
                    .spawn(move || crate::periodic::scheduler_loop(&*q, &s))
                    .expect("spawning a thread"),
            );
        }
        Self { stop, threads }
    }

    fn stop(self) {
        let (lock, condvar) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        condvar.notify_all();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Sleeps up to `period`; returns `true` once asked to stop.
pub(crate) fn sleep_or_stop(stop: &(Mutex<bool>, Condvar), period: Duration) -> bool {
    let (lock, condvar) = stop;
    let stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let (stopped, _) = condvar
        .wait_timeout_while(stopped, period, |stopped| !*stopped)
        .unwrap_or_else(PoisonError::into_inner);
    *stopped
}

/// The manager (seed 002): every half lease, returns expired leases to the
/// queue and purges done jobs past their retention.
fn manager_loop(
    queue: &dyn BaseQueue,
    stop: &(Mutex<bool>, Condvar),
    period: Duration,
    retention: Duration,
) {
    let period = period.max(Duration::from_millis(100));
    while !sleep_or_stop(stop, period) {
        match queue.recover_expired() {
            Ok(r) if r.requeued + r.dead > 0 => log::warn!(
                "manager: {} expired leases returned to the queue, {} jobs dead",
                r.requeued,
                r.dead
            ),
            Ok(_) => {}
            Err(error) => log::error!("manager: recovering expired leases failed: {error}"),
        }
        match queue.purge(retention) {
            Ok(0) => {}
            Ok(n) => log::info!("manager: purged {n} done jobs older than {retention:?}"),
            Err(error) => log::error!("manager: purging failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A killed daemon's pid stays alive until its zombie is reaped, and a
    /// new daemon locks the pid file before its pid replaces that one:
    /// `start` waits for the new pid and never reports the stale one (a
    /// test that killed the daemon `start` reported signalled a zombie, and
    /// the daemon it meant went on).
    #[test]
    fn start_never_reports_the_stale_pid_of_a_dead_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumer.pid");
        // the new daemon holds the lock, and the file still names a live
        // process, as a zombie's pid
        let stale = std::os::unix::process::parent_id();
        let held = PidFile::acquire(&path).unwrap();
        std::fs::write(&path, format!("{stale}\n")).unwrap();
        let error = wait_until_started(&path, Some(stale), Duration::from_millis(200)).unwrap_err();
        assert!(
            error.to_string().contains("did not take its pid file"),
            "{error}"
        );
        // once the new pid is in, it is the one reported
        let new = std::process::id();
        std::fs::write(&path, format!("{new}\n")).unwrap();
        let started = wait_until_started(&path, Some(stale), Duration::from_secs(30)).unwrap();
        assert_eq!(started, new);
        drop(held);
    }
}
