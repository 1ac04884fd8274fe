//! The commands that inspect or steer a consumer or a backend: `stop`,
//! `status`, `quiet`, `commands`, `stats`, `dead`, `flush`, `bench`.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use outband::{BaseQueue, JobId, Registry};
use rustix::process::{Pid, Signal, kill_process};

use crate::cli::{CliResult, DeadCommand, Options};
use crate::pidfile::{PidFile, PidStatus};

fn pidfile(options: &Options) -> Result<&Path, Box<dyn std::error::Error>> {
    options
        .pidfile
        .as_deref()
        .ok_or_else(|| "this command needs the pid file: -p PIDFILE".into())
}

fn signal(pid: u32, signal: Signal) -> Result<(), Box<dyn std::error::Error>> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or("bad pid in the pid file")?;
    kill_process(pid, signal)?;
    Ok(())
}

/// `status`: 0 running, 1 dead but the pid file exists, 3 not running.
pub(crate) fn status(options: &Options) -> CliResult {
    let status = PidFile::status(pidfile(options)?)?;
    match status {
        PidStatus::Running(pid) => println!("running, pid {}", show(pid)),
        PidStatus::Dead(pid) => println!("dead, but the pid file remains (pid {})", show(pid)),
        PidStatus::NotRunning => println!("not running"),
    }
    Ok(status.exit_code())
}

fn show(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

/// `stop`: SIGTERM, then wait up to the grace period (and a little more for
/// the release) and report how the daemon ended.
pub(crate) fn stop(options: &Options) -> CliResult {
    let path = pidfile(options)?;
    let pid = match PidFile::status(path)? {
        PidStatus::Running(Some(pid)) => pid,
        PidStatus::Running(None) => return Err("the pid file holds no pid yet".into()),
        PidStatus::Dead(pid) => {
            println!("not running (pid {} died and left its pid file)", show(pid));
            return Ok(0);
        }
        PidStatus::NotRunning => {
            println!("not running");
            return Ok(0);
        }
    };
    signal(pid, Signal::TERM)?;
    let started = Instant::now();
    let deadline = started + options.grace_period + Duration::from_secs(10);
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
pub(crate) fn quiet(options: &Options) -> CliResult {
    match PidFile::status(pidfile(options)?)? {
        PidStatus::Running(Some(pid)) => {
            signal(pid, Signal::TSTP)?;
            println!("pid {pid} no longer claims jobs; running jobs go on");
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

/// The queues to report on: those given, else every queue the backend holds.
fn queues(options: &Options, queue: &dyn BaseQueue) -> Result<Vec<String>, outband::Error> {
    if options.queues.is_empty() {
        queue.queues()
    } else {
        Ok(options.queues.clone())
    }
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

/// `stats`: per queue, counts per state, jobs/s and run times.
pub(crate) fn stats(options: &Options) -> CliResult {
    let queue = outband::open(&options.url)?;
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "queue", "pending", "running", "done", "dead", "jobs/s", "p50", "p99"
    );
    for name in queues(options, &*queue)? {
        let s = queue.stats(&name)?;
        println!(
            "{name:<24} {:>9} {:>9} {:>9} {:>9} {:>9.1} {:>10} {:>10}",
            s.pending,
            s.running,
            s.done,
            s.dead,
            s.throughput,
            millis(s.p50_run_time),
            millis(s.p99_run_time)
        );
    }
    Ok(0)
}

/// `dead list | retry | delete`.
pub(crate) fn dead(options: &Options, command: &DeadCommand) -> CliResult {
    let queue = outband::open(&options.url)?;
    match command {
        DeadCommand::List { limit } => {
            for name in queues(options, &*queue)? {
                for job in queue.dead_jobs(&name, 0, *limit)? {
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
        DeadCommand::Retry { ids } => each_dead(ids, "retried", |id| queue.retry_dead(id)),
        DeadCommand::Delete { ids } => each_dead(ids, "deleted", |id| queue.delete_dead(id)),
    }
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
pub(crate) fn flush(options: &Options, yes: bool) -> CliResult {
    if options.queues.is_empty() {
        return Err("flush needs the queue to empty: --queue NAME".into());
    }
    let queue = outband::open(&options.url)?;
    for name in &options.queues {
        let pending = queue.len(name)?;
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
            queue.flush(name)?
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

/// `bench`: the core benchmark on this backend.
pub(crate) fn bench(options: &Options, jobs: usize) -> CliResult {
    let queue = outband::open(&options.url)?;
    let config = outband::bench::BenchConfig {
        jobs,
        ..outband::bench::BenchConfig::default()
    };
    let report = outband::bench::run(queue, &config)?;
    println!("{report}");
    Ok(0)
}
