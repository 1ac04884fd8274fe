//! The commands that inspect or steer a consumer or a backend: `stop`,
//! `status`, `quiet`, `commands`, `stats`, `consumers`, `job`, `jobs`, `cancel`, `dead`,
//! `flush`, `bench`.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use outband::{BaseQueue, Cancellation, Job, JobId, JobQuery, Registry};
use rustix::process::{Pid, Signal, kill_process};

use crate::cli::{CliResult, DeadCommand, JobsOptions};
use crate::pidfile::{PidFile, PidStatus};

fn signal(pid: u32, signal: Signal) -> Result<(), Box<dyn std::error::Error>> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or("bad pid in the pid file")?;
    kill_process(pid, signal)?;
    Ok(())
}

/// `status`: 0 running, 1 dead but the pid file exists, 3 not running.
///
/// A running daemon's backend is checked too, when `--url` or
/// `OUTBAND_URL` names it (never the default, which would create an SQLite
/// file): pending jobs that no command of this binary serves are reported,
/// as the daemon logs them at start.
pub(crate) fn status(url: Option<&str>, pidfile: &Path) -> CliResult {
    let status = PidFile::status(pidfile)?;
    match (status, url) {
        (PidStatus::Running(pid), None) => println!("running, pid {}", show(pid)),
        (PidStatus::Running(pid), Some(url)) => {
            println!("running, pid {}", show(pid));
            match outband::open(url) {
                Ok(backend) => match crate::unserved::find(&*backend, &[]) {
                    Ok(unserved) => {
                        for line in crate::unserved::describe(&unserved) {
                            println!("warning: {line}");
                        }
                    }
                    Err(error) => println!("the backend could not be checked: {error}"),
                },
                Err(error) => println!("the backend could not be checked: {error}"),
            }
        }
        (PidStatus::Dead(pid), _) => {
            println!("dead, but the pid file remains (pid {})", show(pid));
        }
        (PidStatus::NotRunning, _) => println!("not running"),
    }
    Ok(status.exit_code())
}

fn show(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

/// `stop`: SIGTERM, then wait up to the grace period (and a little more for
/// the release) and report how the daemon ended.
pub(crate) fn stop(path: &Path, grace_period: Duration) -> CliResult {
    let pid = match PidFile::status(path)? {
        PidStatus::Running(Some(pid)) => pid,
        PidStatus::Running(None) => return Err("the pid file holds no pid yet".into()),
        PidStatus::Dead(pid) => {
            // nothing holds it: a daemon starting now would take it over
            let removed = PidFile::remove_stale(path)?;
            println!(
                "not running (pid {} died and left its pid file{})",
                show(pid),
                if removed { ", now removed" } else { "" }
            );
            return Ok(0);
        }
        PidStatus::NotRunning => {
            println!("not running");
            return Ok(0);
        }
    };
    signal(pid, Signal::TERM)?;
    let started = Instant::now();
    let deadline = started + grace_period + Duration::from_secs(10);
    while Instant::now() < deadline {
        match PidFile::status(path)? {
            PidStatus::Running(_) => std::thread::sleep(Duration::from_millis(20)),
            PidStatus::NotRunning => {
                println!(
                    "stopped pid {pid} in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(0);
            }
            PidStatus::Dead(_) => {
                println!("pid {pid} ended without removing its pid file");
                return Ok(1);
            }
        }
    }
    println!(
        "pid {pid} is still running after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(1)
}

/// `quiet`: SIGTSTP, so the daemon stops claiming.
pub(crate) fn quiet(pidfile: &Path) -> CliResult {
    match PidFile::status(pidfile)? {
        PidStatus::Running(Some(pid)) => {
            signal(pid, Signal::TSTP)?;
            println!(
                "pid {pid} no longer claims jobs nor enqueues periodic ones; running jobs go on"
            );
            Ok(0)
        }
        _ => {
            println!("not running");
            Ok(3)
        }
    }
}

/// `commands`: the registered commands.
pub(crate) fn commands() -> CliResult {
    let registry = Registry::global()?;
    println!(
        "{:<40} {:<16} {:>8} {:>8} {:<12} schedule",
        "command", "queue", "attempts", "priority", "key"
    );
    for command in registry.commands() {
        let schedule = registry
            .periodic()
            .iter()
            .find(|p| p.command.name == command.name)
            .map_or("", |p| p.cron);
        println!(
            "{:<40} {:<16} {:>8} {:>8} {:<12} {schedule}",
            command.name,
            command.queue,
            command.max_attempts,
            command.priority,
            command.key.unwrap_or("-"),
        );
    }
    Ok(0)
}

/// The queues to report on: those given, else every queue the backend
/// holds jobs of or has paused.
fn queues(given: &[String], backend: &dyn BaseQueue) -> Result<Vec<String>, outband::Error> {
    if given.is_empty() {
        outband::admin::queues(backend)
    } else {
        Ok(given.to_vec())
    }
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

/// `stats`: per queue, counts per state, jobs/s and run times.
pub(crate) fn stats(url: &str, given: &[String]) -> CliResult {
    let backend = outband::open(url)?;
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}  claims",
        "queue", "pending", "running", "done", "dead", "cancelled", "jobs/s", "p50", "p99"
    );
    let names = queues(given, &*backend)?;
    for name in &names {
        let s = backend.stats(name)?;
        println!(
            "{name:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9.1} {:>10} {:>10}  {}",
            s.pending,
            s.running,
            s.done,
            s.dead,
            s.cancelled,
            s.throughput,
            millis(s.p50_run_time),
            millis(s.p99_run_time),
            if s.paused { "paused" } else { "on" }
        );
    }
    let unserved = crate::unserved::find(&*backend, &[])?;
    for line in crate::unserved::describe(&unserved) {
        println!("warning: {line}");
    }
    Ok(0)
}

/// `consumers`: the backend's consumer registry, alive ones first. Times
/// are UTC; "last seen" is on the backend's clock.
pub(crate) fn consumers(url: &str) -> CliResult {
    let backend = outband::open(url)?;
    if !backend.capabilities().consumer_registry {
        println!("this backend keeps no consumer registry");
        return Ok(0);
    }
    let consumers = backend.consumers()?;
    println!(
        "{:<40} {:<16} {:>8} {:<24} {:>12} {:>7} {:<20} {:<20}  state",
        "id", "host", "pid", "queues", "threads/conc", "running", "started", "last seen"
    );
    for consumer in &consumers {
        let info = &consumer.info;
        println!(
            "{:<40} {:<16} {:>8} {:<24} {:>12} {:>7} {:<20} {:<20}  {}",
            info.id,
            info.host,
            info.pid,
            info.queues.join(","),
            format!("{}/{}", info.threads, info.concurrency),
            info.running,
            humantime::format_rfc3339_seconds(info.started_at).to_string(),
            humantime::format_rfc3339_seconds(consumer.seen_at).to_string(),
            if consumer.alive { "alive" } else { "gone" }
        );
    }
    Ok(0)
}

/// `pause QUEUE…`: stored in the backend, so every consumer sees it.
pub(crate) fn pause(url: &str, names: &[String]) -> CliResult {
    let backend = outband::open(url)?;
    let known = backend.queues()?;
    for name in names {
        let unknown = if known.contains(name) {
            ""
        } else {
            "; it holds no job yet, and consumers will leave its jobs pending"
        };
        if backend.pause(name)? {
            println!("queue `{name}`: paused{unknown}");
        } else {
            println!("queue `{name}`: paused already; nothing changed");
        }
    }
    Ok(0)
}

/// `resume QUEUE…`.
pub(crate) fn resume(url: &str, names: &[String]) -> CliResult {
    let backend = outband::open(url)?;
    for name in names {
        if backend.resume(name)? {
            println!("queue `{name}`: resumed");
        } else {
            println!("queue `{name}`: not paused; nothing changed");
        }
    }
    Ok(0)
}

/// `dead list | retry | delete`.
pub(crate) fn dead(url: &str, command: &DeadCommand) -> CliResult {
    let backend = outband::open(url)?;
    match command {
        DeadCommand::List {
            queues: given,
            limit,
        } => {
            for name in queues(&given.queues, &*backend)? {
                for job in backend.dead_jobs(&name, 0, *limit)? {
                    println!(
                        "{}\t{}\t{}\tattempt {}/{}\t{}",
                        job.id,
                        job.queue,
                        job.command,
                        job.attempt,
                        job.max_attempts,
                        job.last_error.unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        DeadCommand::Retry {
            all: true,
            queues: given,
            ..
        } => {
            for name in queues(&given.queues, &*backend)? {
                let retried = outband::admin::retry_all_dead(&*backend, &name)?;
                println!("retried {retried} dead jobs of queue `{name}`");
            }
            Ok(0)
        }
        DeadCommand::Retry { ids, .. } => each_dead(ids, "retried", |id| backend.retry_dead(id)),
        DeadCommand::Delete { ids } => each_dead(ids, "deleted", |id| backend.delete_dead(id)),
    }
}

/// `job ID…`: each job as stored, its arguments and result shown through
/// the command's types when this program knows the command. Exits 1 when a
/// job is not found.
pub(crate) fn job(url: &str, ids: &[u64]) -> CliResult {
    let backend = outband::open(url)?;
    let registry = Registry::global()?;
    let mut missing = 0;
    for &id in ids {
        match backend.job(JobId(id))? {
            Some(job) => print!("{}", describe(&job, registry)),
            None => {
                println!("job {id}: not found (never enqueued, or purged after its retention)");
                missing += 1;
            }
        }
    }
    Ok(u8::from(missing > 0))
}

/// `jobs --state S`: per queue, a line per job, newest first, and how to go
/// on when more may follow. A page of the backend examines a bounded number
/// of jobs, so a rare `--command` may take several pages to fill; after
/// [`MAX_PAGES`] the listing stops and says where to go on.
pub(crate) fn list(url: &str, options: &JobsOptions) -> CliResult {
    /// The most backend pages one queue's listing reads.
    const MAX_PAGES: usize = 50;
    let backend = outband::open(url)?;
    let limit = usize::try_from(options.limit).unwrap_or(JobQuery::MAX_LIMIT);
    for name in queues(&options.queues.queues, &*backend)? {
        let mut query = JobQuery::new(&name, options.state);
        if let Some(command) = &options.command {
            query = query.command(command);
        }
        if let Some(before) = options.before {
            query = query.before(JobId(before));
        }
        let mut shown = 0;
        let mut next = None;
        for _ in 0..MAX_PAGES {
            let page = backend.jobs(&query.clone().limit(limit - shown))?;
            for job in &page.jobs {
                println!("{}", summary(job));
            }
            shown += page.jobs.len();
            next = page.next;
            match next {
                Some(id) if shown < limit => query = query.before(id),
                _ => break,
            }
        }
        if let Some(next) = next {
            println!(
                "more {} jobs of queue `{name}` may follow: add --queue {name} --before {next}",
                options.state
            );
        }
    }
    Ok(0)
}

/// A job as `jobs` prints it: one tab-separated line.
fn summary(job: &Job) -> String {
    let detail = match (&job.progress, &job.last_error) {
        (Some(progress), _) if !job.state.is_finished() => {
            format!("{:.0} % {}", progress.fraction * 100.0, progress.note)
        }
        (_, Some(error)) => error.clone(),
        _ => String::new(),
    };
    format!(
        "{}\t{}\t{}\t{}\tattempt {}/{}\tenqueued {}\t{}",
        job.id,
        job.queue,
        job.command,
        job.state,
        job.attempt,
        job.max_attempts,
        humantime::format_rfc3339_seconds(job.enqueued_at),
        detail.trim_end()
    )
}

/// `cancel ID…`: what became of each job. Exits 1 when one was not found
/// or had finished already, which the line says.
pub(crate) fn cancel(url: &str, ids: &[u64], reason: &str) -> CliResult {
    let backend = outband::open(url)?;
    let mut unchanged = 0;
    for &id in ids {
        match backend.cancel(JobId(id), reason)? {
            Cancellation::Cancelled => println!("job {id}: cancelled"),
            Cancellation::Requested => {
                println!("job {id}: running; its consumer stops it, and it ends cancelled");
            }
            Cancellation::Finished(state) => {
                println!("job {id}: {state} already; nothing changed");
                unchanged += 1;
            }
            Cancellation::NotFound => {
                println!("job {id}: not found (never enqueued, or purged)");
                unchanged += 1;
            }
            other => {
                println!("job {id}: {other:?}");
                unchanged += 1;
            }
        }
    }
    Ok(u8::from(unchanged > 0))
}

/// A job as `job ID` prints it, one field a line.
fn describe(job: &Job, registry: &Registry) -> String {
    let command = registry.get(&job.command).ok();
    let time = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let mut out = format!("job {}\n", job.id);
    let mut line = |name: &str, value: String| out.push_str(&format!("  {name:<10}{value}\n"));
    let key = job
        .key
        .as_ref()
        .map_or_else(String::new, |key| format!(", key {key}"));
    line(
        "command",
        format!(
            "{} (queue {}{key}, priority {})",
            job.command, job.queue, job.priority
        ),
    );
    line(
        "state",
        format!(
            "{}, attempt {}/{}",
            job.state, job.attempt, job.max_attempts
        ),
    );
    line("enqueued", time(job.enqueued_at));
    line("run at", time(job.run_at));
    if let Some(started) = job.started_at {
        line("started", time(started));
    }
    if let Some(finished) = job.finished_at {
        line("finished", time(finished));
    }
    if job.duration.is_some() {
        line("duration", millis(job.duration));
    }
    let timeout = job.timeout.or(command.and_then(|command| command.timeout));
    if let Some(timeout) = timeout {
        line("timeout", humantime::format_duration(timeout).to_string());
    }
    if let Some(progress) = &job.progress {
        let percent = format!("{:.0} %", progress.fraction * 100.0);
        line(
            "progress",
            if progress.note.is_empty() {
                percent
            } else {
                format!("{percent}: {}", progress.note)
            },
        );
    }
    if let Some(error) = &job.last_error {
        line("error", error.clone());
    }
    line("arguments", outband::admin::args_shown(Some(registry), job));
    if let Some(result) = outband::admin::result_shown(Some(registry), job) {
        line("result", result);
    }
    out
}

fn each_dead(
    ids: &[u64],
    done: &str,
    mut act: impl FnMut(JobId) -> Result<bool, outband::Error>,
) -> CliResult {
    let mut missing = 0;
    for &id in ids {
        if act(JobId(id))? {
            println!("job {id} {done}");
        } else {
            println!("job {id} is not dead");
            missing += 1;
        }
    }
    Ok(u8::from(missing > 0))
}

/// `flush --queue Q`: deletes pending jobs, after asking unless `--yes`.
pub(crate) fn flush(url: &str, names: &[String], yes: bool) -> CliResult {
    let backend = outband::open(url)?;
    for name in names {
        let pending = backend.len(name)?;
        if !yes
            && !confirm(&format!(
                "delete the {pending} pending jobs of queue `{name}`?"
            ))?
        {
            println!("queue `{name}` left as it is");
            continue;
        }
        println!(
            "deleted {} pending jobs of queue `{name}`",
            backend.flush(name)?
        );
    }
    Ok(0)
}

fn confirm(question: &str) -> std::io::Result<bool> {
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// `bench`: outband-bench's benchmark on this backend.
#[cfg(feature = "bench")]
pub(crate) fn bench(url: &str, jobs: usize) -> CliResult {
    let backend = outband::open(url)?;
    let config = outband_bench::BenchConfig {
        jobs,
        ..outband_bench::BenchConfig::default()
    };
    let report = outband_bench::run(backend, &config)?;
    println!("{report}");
    Ok(0)
}

/// `bench` in a binary built without the feature: says how to get it.
#[cfg(not(feature = "bench"))]
pub(crate) fn bench(_url: &str, _jobs: usize) -> CliResult {
    Err(
        "this binary was built without outband-daemon's `bench` feature, \
         which links the benchmark and its built-in commands"
            .into(),
    )
}
