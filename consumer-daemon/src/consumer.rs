//! Running the consumer: in the foreground or as a daemon, with signals,
//! periodic commands and logging. The manager (recovery of expired leases,
//! the purge) runs in the processor: see `outband::maintenance`.

use std::io::{BufRead, BufReader, PipeWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flexi_logger::{DeferredNow, ErrorChannel, FileSpec, Logger, LoggerHandle};
use outband::maintenance::Running;
use outband::{BaseQueue, Prefetch, Processor, ProcessorConfig};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGTSTP};
use signal_hook::iterator::Signals;

use crate::cli::{CliResult, ConsumerOptions, ProcessorKind};
use crate::pidfile::PidFile;

/// Writes a line to standard error, if it can: a closed or broken standard
/// error never stops or crashes the consumer.
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `run`, and the daemon once forked: consumes in this process until
/// signalled.
pub(crate) fn run_foreground(url: &str, options: &ConsumerOptions) -> CliResult {
    run(url, options, options.logfile.as_deref(), &mut Starter(None))
}

/// Takes the pid file, starts logging and consumes; `starter` hears how the
/// start went.
fn run(
    url: &str,
    options: &ConsumerOptions,
    logfile: Option<&Path>,
    starter: &mut Starter,
) -> CliResult {
    options.validate()?;
    let pidfile = options
        .pidfile
        .as_deref()
        .map(PidFile::acquire)
        .transpose()?;
    let logger = match start_logging(logfile) {
        Ok(logger) => logger,
        Err(error) => {
            // a consumer that never ran leaves no pid file behind
            if let Some(pidfile) = pidfile {
                pidfile.remove();
            }
            return Err(error);
        }
    };
    consume(url, options, &logger, pidfile, starter)
}

/// `start`: forks into a daemon that consumes, and returns once the daemon
/// has opened its backend, or failed to.
///
/// The daemon tells its parent how the start went through a pipe: warnings
/// (an unreachable backend, jobs no command of this binary serves), then
/// either its pid once it consumes, or why it could not start. The parent
/// prints them on the terminal and exits 0 only in the first case.
pub(crate) fn start_daemon(url: &str, options: &ConsumerOptions) -> CliResult {
    options.validate()?;
    let Some(pidfile) = options.pidfile.as_deref() else {
        return Err("start needs a pid file: -p PIDFILE".into());
    };
    // Refuse before forking, so the error reaches the caller's terminal.
    if let crate::PidStatus::Running(pid) = PidFile::status(pidfile)? {
        let pid = pid.map_or("unknown".to_owned(), |p| p.to_string());
        return Err(format!(
            "another consumer is already running with pid file {} (pid {pid})",
            pidfile.display()
        )
        .into());
    }
    let cwd = std::env::current_dir()?;
    let mut options = options.clone();
    let absolute = |path: &Path| -> PathBuf { cwd.join(path) };
    let logfile = options.daemon_log().map(|path| absolute(&path));
    options.pidfile = Some(absolute(pidfile));
    check_folder("pid file", pidfile)?;
    if let Some(logfile) = &logfile {
        check_folder("log file", logfile)?;
    }
    let mut url = url.to_owned();
    if let Some(path) = url.strip_prefix("sqlite://")
        && !path.starts_with('/')
        && !path.starts_with(':')
    {
        url = format!("sqlite://{}", absolute(Path::new(path)).display());
    }

    let (reader, writer) = std::io::pipe()?;
    // Daemonize before any thread starts: fork keeps only the calling thread.
    match daemonize::Daemonize::new()
        .working_directory(&cwd)
        .execute()
    {
        daemonize::Outcome::Parent(Ok(_)) => {
            // the daemon holds the only write end left: its exit ends the read
            drop(writer);
            hear_the_start(reader, logfile.as_deref())
        }
        daemonize::Outcome::Parent(Err(error)) => {
            Err(format!("daemonizing failed: {error}").into())
        }
        daemonize::Outcome::Child(Ok(_)) => {
            drop(reader);
            let mut starter = Starter(Some(writer));
            let code = match run(&url, &options, logfile.as_deref(), &mut starter) {
                Ok(code) => code,
                Err(error) => {
                    log::error!("the consumer failed: {error}");
                    starter.fail(&error.to_string());
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

/// The parent of `start` reads what the daemon says of its start.
fn hear_the_start(reader: std::io::PipeReader, logfile: Option<&Path>) -> CliResult {
    for line in BufReader::new(reader).lines() {
        let line = line?;
        if let Some(warning) = line.strip_prefix("warning ") {
            say(&format!("warning: {warning}"));
        } else if let Some(pid) = line.strip_prefix("started ") {
            println!("outband consumer started, pid {pid}");
            return Ok(0);
        } else if let Some(error) = line.strip_prefix("failed ") {
            return Err(format!("the consumer did not start: {error}").into());
        }
    }
    let log = logfile.map_or_else(String::new, |path| {
        format!("; see its log {}", path.display())
    });
    Err(format!("the consumer ended before it started{log}").into())
}

/// The daemon's side of the pipe to the parent of `start`; `None` in the
/// foreground, where the log says it all.
struct Starter(Option<PipeWriter>);

impl Starter {
    fn send(&mut self, kind: &str, text: &str) {
        if let Some(pipe) = &mut self.0 {
            // one line per message: the text's own line breaks are folded
            let text = text.replace('\n', " ");
            let _ = writeln!(pipe, "{kind} {text}");
        }
    }

    /// Logs `text` as a warning and, for `start`, shows it on the terminal.
    fn warn(&mut self, text: &str) {
        log::warn!("{text}");
        self.send("warning", text);
    }

    /// The consumer runs: the parent of `start` may exit.
    fn started(&mut self) {
        self.send("started", &std::process::id().to_string());
        self.0 = None;
    }

    fn fail(&mut self, error: &str) {
        self.send("failed", error);
        self.0 = None;
    }
}

/// Refuses a file (`what`: "log file", "pid file") whose folder does not
/// exist, rather than create the folder.
fn check_folder(what: &str, file: &Path) -> Result<(), String> {
    let folder = match file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "the {what}'s folder {} does not exist",
            folder.display()
        ))
    }
}

fn start_logging(logfile: Option<&Path>) -> Result<LoggerHandle, Box<dyn std::error::Error>> {
    // A log line that cannot be written is dropped: logging never stops or
    // crashes the consumer (flexi_logger would panic when even its error
    // channel is broken, as a closed standard error is).
    let logger = Logger::try_with_env_or_str("info")?
        .format(log_line)
        .panic_if_error_channel_is_broken(false);
    let logger = match logfile {
        Some(path) => {
            check_folder("log file", path)?;
            logger.log_to_file(FileSpec::try_from(path)?).append()
        }
        None => logger.log_to_stderr().error_channel(ErrorChannel::DevNull),
    };
    Ok(logger.start()?)
}

/// One log line: time, level, target and message, as an operator reads it.
fn log_line(
    w: &mut dyn Write,
    now: &mut DeferredNow,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    write!(
        w,
        "{} {:<5} {}: {}",
        now.format("%Y-%m-%dT%H:%M:%S%.3f%:z"),
        record.level(),
        record.target(),
        record.args()
    )
}

/// The processor the options ask for, on `backend`.
fn processor(
    backend: &Arc<dyn BaseQueue>,
    options: &ConsumerOptions,
) -> Result<Processor, outband::Error> {
    let mut config = ProcessorConfig::default()
        .queues(options.queues.iter().cloned())
        .lease(options.lease)
        .max_threads(usize::try_from(options.threads).unwrap_or(usize::MAX))
        .concurrency(usize::try_from(options.concurrency).unwrap_or(usize::MAX))
        .wait_time(Duration::from_secs_f64(options.delay))
        .wait_backoff(options.backoff, Duration::from_secs_f64(options.max_delay))
        .retention(options.retention);
    config.prefetch = options.prefetch;
    if let Some(completers) = options.completers {
        config = config.completers(usize::try_from(completers).unwrap_or(usize::MAX));
    }
    match options.processor {
        ProcessorKind::Simple => Processor::simple(Arc::clone(backend), config),
        ProcessorKind::Multi => Processor::multi(Arc::clone(backend), config),
    }
}

/// Consumes until the signals say stop: the process's main loop.
fn consume(
    url: &str,
    options: &ConsumerOptions,
    logger: &LoggerHandle,
    pidfile: Option<PidFile>,
    starter: &mut Starter,
) -> CliResult {
    let setup = (|| -> Result<_, Box<dyn std::error::Error>> {
        let signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGTSTP])?;
        let backend = outband::open(url)?;
        let processor = processor(&backend, options)?;
        check_at_start(&*backend, processor.queues(), starter)?;
        if let Some(address) = &options.metrics {
            let bound = crate::metrics::serve(address, &backend)?;
            log::info!("metrics on http://{bound}/metrics");
        }
        Ok((signals, backend, processor))
    })();
    let (mut signals, queue, processor) = match setup {
        Ok(setup) => setup,
        Err(error) => {
            // a consumer that never ran leaves no pid file behind
            if let Some(pidfile) = pidfile {
                pidfile.remove();
            }
            return Err(error);
        }
    };
    let background = Background::start(&queue, options);
    processor.start();
    let threads = match options.processor {
        ProcessorKind::Simple => "1 thread".to_owned(),
        ProcessorKind::Multi => {
            let prefetch = match options.prefetch {
                Prefetch::Adaptive { max } => format!("auto (up to {max})"),
                Prefetch::Fixed(n) => n.to_string(),
            };
            format!(
                "{} threads, prefetch {prefetch}, concurrency {}",
                options.threads, options.concurrency
            )
        }
    };
    log::info!(
        "outband consumer {} started: pid {}, {:?} processor, {threads}, queues {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        options.processor,
        processor.queues().join(", ")
    );
    starter.started();

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
                    Err(error) => say(&format!("outband: reopening the log file failed: {error}")),
                },
                SIGTSTP => {
                    log::info!(
                        "quiet: no new claims and no periodic commands enqueued; running jobs go on"
                    );
                    processor.stop_claiming();
                    background.stop_periodic();
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

/// Checks made once the backend is open, before the consumer claims: an
/// unreachable backend, and jobs that no command of this binary serves.
///
/// An unreachable backend is a warning, not a refusal: the consumer keeps
/// trying, as it does for a backend lost later, so that a consumer started
/// before its backend (at boot, in a container) comes up by itself.
fn check_at_start(
    backend: &dyn BaseQueue,
    served: &[String],
    starter: &mut Starter,
) -> Result<(), outband::Error> {
    if let Some(warning) = crate::unserved::no_commands()? {
        starter.warn(&warning);
    }
    if let Err(error) = backend.now() {
        starter.warn(&format!(
            "the backend is unreachable ({error}); the consumer started and keeps trying"
        ));
        return Ok(());
    }
    match crate::unserved::find(backend, served) {
        Ok(unserved) => {
            for line in crate::unserved::describe(&unserved) {
                starter.warn(&line);
            }
        }
        Err(error) => starter.warn(&format!(
            "the backend's queues could not be listed: {error}"
        )),
    }
    Ok(())
}

/// The periodic scheduler, on a thread of its own, with a stop of its own:
/// a quieted consumer enqueues no more periodic commands, and leaves their
/// ticks to another consumer. (The manager, the processor's maintenance,
/// goes on while running jobs finish.)
struct Background {
    periodic: Mutex<Option<Running>>,
}

impl Background {
    fn start(backend: &Arc<dyn BaseQueue>, options: &ConsumerOptions) -> Self {
        let scheduler = if options.no_periodic {
            None
        } else {
            crate::periodic::scheduler()
        };
        let periodic = scheduler.map(|scheduler| scheduler.spawn(Arc::clone(backend)));
        Self {
            periodic: Mutex::new(periodic),
        }
    }

    /// Stops the periodic scheduler, if it runs.
    fn stop_periodic(&self) {
        let periodic = self
            .periodic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(periodic) = periodic {
            periodic.stop();
        }
    }

    fn stop(self) {
        self.stop_periodic();
    }
}
