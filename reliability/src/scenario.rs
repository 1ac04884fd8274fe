//! What the process scenarios (crash, overload, shutdown) share: one
//! backend with tables or a namespace of its own, a run sink beside it, and
//! real consumer processes of `outband-reliability-consumer`, started,
//! signalled and killed through their pid files.
//!
//! Backends and their servers, as in `.env.sample`:
//!
//! | backend | where | isolation |
//! |---|---|---|
//! | SQLite | a file in the scene's temporary directory | the directory |
//! | PostgreSQL | `PG_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) | a table prefix (`?prefix=`) |
//! | MySQL/MariaDB | `MYSQL_DATABASE_URL` (default `mysql://root@127.0.0.1:3306/test`) | a table prefix |
//! | Redis | `REDIS_URL` (default `redis://127.0.0.1:6379/`) | a namespace (`?namespace=`) |
//!
//! A scene runs jobs of one [`Kind`]: sync commands, on threads, or async
//! ones, on the consumer's async runtime; each kind has a queue of its own,
//! and a scene's consumers serve only its queue. How many jobs a crash may
//! make run again is [`Consumer::leases`].
//!
//! A scene whose server is unreachable is skipped with a notice, unless
//! `OUTBAND_REQUIRE_SERVERS=1` (as in CI), which makes it fail.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, Error, NewJob, QueueStats, codec};
use outband_diesel::DatabaseQueue;
use outband_redis::RedisQueue;
use outband_testkit::{
    kill_daemons, mysql_url, pg_url, pid_in, redis_url, skip_or_fail, unique_name, wait_until,
    with_param,
};

use crate::Summary;
use crate::sink::{SINK_ENV, Sink};

/// The queue of the sync scenario commands.
pub const QUEUE: &str = "reliability";
/// The command that records one run: arguments `(job: u64,)`.
pub const RECORD: &str = "reliability::record";
/// The command that sleeps, then records one run: arguments `(job: u64, millis: u64)`.
pub const SLOW_RECORD: &str = "reliability::slow_record";
/// The command limited to 3 running at once, which logs when it ran:
/// arguments `(job: u64, millis: u64)`.
pub const LIMITED: &str = "reliability::limited";
/// The command limited to 50 starts per second, which logs when it
/// started: arguments `(job: u64,)`.
pub const RATED: &str = "reliability::rated";
/// The queue of the async scenario commands: apart from [`QUEUE`], because
/// a consumer that serves an async command holds `concurrency` leases more.
pub const ASYNC_QUEUE: &str = "reliability_async";
/// [`RECORD`] as an async command.
pub const ASYNC_RECORD: &str = "reliability::async_record";
/// [`SLOW_RECORD`] as an async command, its sleep a timer of the runtime.
pub const ASYNC_SLOW_RECORD: &str = "reliability::async_slow_record";
/// Attempts of a scenario job: enough that transient errors never make it
/// dead, as the consumer's commands declare.
pub const MAX_ATTEMPTS: u32 = 11;
/// The environment variable that fixes the scenarios' random seed.
pub const SEED_ENV: &str = "OUTBAND_RELIABILITY_SEED";

/// A backend a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// The PostgreSQL server of `PG_DATABASE_URL`.
    Postgres,
    /// The MySQL/MariaDB server of `MYSQL_DATABASE_URL`.
    Mysql,
    /// The Redis server of `REDIS_URL`.
    Redis,
}

impl Backend {
    /// The backend's name in summary lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Redis => "redis",
        }
    }
}

/// Which commands a scene's jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Plain functions, on the consumer's threads.
    Sync,
    /// `async fn`s, on the consumer's async runtime, up to `--concurrency`
    /// at once.
    Async,
}

impl Kind {
    /// The kind's name in summary lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }

    /// The queue its commands are on.
    pub fn queue(self) -> &'static str {
        match self {
            Self::Sync => QUEUE,
            Self::Async => ASYNC_QUEUE,
        }
    }

    /// The job that records one run for sink key `job`.
    pub fn record_job(self, job: u64) -> NewJob {
        let command = match self {
            Self::Sync => RECORD,
            Self::Async => ASYNC_RECORD,
        };
        NewJob::new(command, codec::encode(&(job,)).expect("a u64 encodes"))
            .queue(self.queue())
            .max_attempts(MAX_ATTEMPTS)
    }

    /// The job that runs `millis`, then records one run for sink key `job`.
    pub fn slow_record_job(self, job: u64, millis: u64) -> NewJob {
        let command = match self {
            Self::Sync => SLOW_RECORD,
            Self::Async => ASYNC_SLOW_RECORD,
        };
        NewJob::new(
            command,
            codec::encode(&(job, millis)).expect("two u64 encode"),
        )
        .queue(self.queue())
        .max_attempts(MAX_ATTEMPTS)
    }
}

/// A consumer's share of the jobs: its `--threads`, `--prefetch` and
/// `--concurrency`, which together bound the leases it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Sync jobs run at once.
    pub threads: u64,
    /// Jobs claimed ahead: a fixed number, or `None` for the daemon's
    /// default adaptive prefetch, which claims up to
    /// [`Prefetch::DEFAULT_MAX`](outband::Prefetch::DEFAULT_MAX) ahead.
    pub prefetch: Option<u64>,
    /// Async jobs run at once.
    pub concurrency: u64,
}

impl Consumer {
    /// `threads` threads, and the prefetch and `concurrency` the daemon
    /// would take by default.
    pub const fn threads(threads: u64) -> Self {
        Self {
            threads,
            prefetch: None,
            concurrency: 100,
        }
    }

    /// A consumer that runs `jobs` jobs of `kind` at once: on `jobs`
    /// threads, or for async jobs in `jobs` async slots, beside the one
    /// thread a consumer has at least.
    pub const fn running(kind: Kind, jobs: u64) -> Self {
        match kind {
            Kind::Sync => Self::threads(jobs),
            Kind::Async => Self::threads(1).concurrency(jobs),
        }
    }

    /// The same, claiming a fixed `prefetch` jobs ahead.
    pub const fn prefetch(self, prefetch: u64) -> Self {
        Self {
            prefetch: Some(prefetch),
            ..self
        }
    }

    /// The same, running up to `concurrency` async jobs at once.
    pub const fn concurrency(self, concurrency: u64) -> Self {
        Self {
            concurrency,
            ..self
        }
    }

    /// The consumer's options: `-t`, `-c` and a fixed `--prefetch`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-t".to_owned(),
            self.threads.to_string(),
            "-c".to_owned(),
            self.concurrency.to_string(),
        ];
        if let Some(prefetch) = self.prefetch {
            args.extend(["--prefetch".to_owned(), prefetch.to_string()]);
        }
        args
    }

    /// The most leases it holds serving jobs of `kind`, as the daemon
    /// documents: `threads + prefetch + concurrency`, the prefetch at its
    /// most and the concurrency counted only when it serves an async
    /// command. A kill makes at most that many jobs run again.
    pub fn leases(&self, kind: Kind) -> u64 {
        let concurrency = match kind {
            Kind::Sync => 0,
            Kind::Async => self.concurrency,
        };
        let prefetch = self
            .prefetch
            .unwrap_or(outband::Prefetch::DEFAULT_MAX as u64);
        self.threads + prefetch + concurrency
    }
}

/// The scenario's random seed: [`SEED_ENV`] if set, else a new one. Printed,
/// so a failing run can be replayed.
pub fn seed(scenario: &str) -> u64 {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("{scenario}: seed {seed} (replay with {SEED_ENV}={seed})");
    seed
}

/// The peak resident set size of process `pid` in KiB (`VmHWM` of
/// `/proc/<pid>/status`), while it lives.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// One scenario's backend, sink and consumer processes. Dropping it kills
/// the consumers it started and removes its tables, namespace and files.
pub struct Scene {
    kind: Backend,
    commands: Kind,
    dir: tempfile::TempDir,
    bin: PathBuf,
    url: String,
    backend: Arc<dyn BaseQueue>,
    sink: Sink,
    sink_url: String,
    namespace: Option<String>,
    pidfiles: Vec<PathBuf>,
    children: Vec<Child>,
}

impl std::fmt::Debug for Scene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scene")
            .field("kind", &self.kind)
            .field("commands", &self.commands)
            .field("url", &self.url)
            .field("sink", &self.sink_url)
            .finish_non_exhaustive()
    }
}

impl Scene {
    /// A fresh scene on `backend` for jobs of `commands` and the consumer
    /// binary at `bin` (an integration test's
    /// `env!("CARGO_BIN_EXE_outband-reliability-consumer")`), with an empty
    /// sink; `None` when the backend's server is unreachable and not
    /// required.
    pub fn new(backend: Backend, commands: Kind, bin: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // a table prefix, and with its `_` trimmed a namespace
        let name = format!("{}_", unique_name("rel"));
        let sql_server = |base: String| -> Option<(String, String, Arc<dyn BaseQueue>)> {
            let opened = DatabaseQueue::builder(&base)
                .prefix(&name)
                .temporary(true)
                .open();
            match opened {
                Ok(queue) => Some((with_param(&base, "prefix", &name), base, Arc::new(queue))),
                Err(error @ Error::Unavailable(_)) => skip_or_fail(&base, &error),
                Err(error) => panic!("cannot open {base}: {error}"),
            }
        };
        let (url, sink_url, queue, namespace): (String, String, Arc<dyn BaseQueue>, _) =
            match backend {
                Backend::Sqlite => {
                    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                    let backend = DatabaseQueue::open(&url).expect("a SQLite file queue");
                    (url.clone(), format!("{url}#runs"), Arc::new(backend), None)
                }
                Backend::Postgres => {
                    let (url, base, queue) = sql_server(pg_url())?;
                    (url, format!("{base}#{name}runs"), queue, None)
                }
                Backend::Mysql => {
                    let (url, base, queue) = sql_server(mysql_url())?;
                    (url, format!("{base}#{name}runs"), queue, None)
                }
                Backend::Redis => {
                    let base = redis_url();
                    let namespace = name.trim_end_matches('_').to_owned();
                    let url = with_param(&base, "namespace", &namespace);
                    let backend = RedisQueue::connect(&url).expect("a Redis URL");
                    if let Err(error) = backend.now() {
                        return skip_or_fail(&base, &error);
                    }
                    let sink_url = format!("{base}#{namespace}:runs");
                    (url, sink_url, Arc::new(backend), Some(namespace))
                }
            };
        let sink = Sink::open(&sink_url).expect("the sink opens");
        sink.create().expect("the sink is created");
        Some(Scene {
            kind: backend,
            commands,
            dir,
            bin: PathBuf::from(bin),
            url,
            backend: queue,
            sink,
            sink_url,
            namespace,
            pidfiles: Vec::new(),
            children: Vec::new(),
        })
    }

    /// Which backend.
    pub fn kind(&self) -> Backend {
        self.kind
    }

    /// Which commands its jobs run.
    pub fn commands(&self) -> Kind {
        self.commands
    }

    /// The job that records one run for sink key `job`.
    pub fn record_job(&self, job: u64) -> NewJob {
        self.commands.record_job(job)
    }

    /// The job that runs `millis`, then records one run for sink key `job`.
    pub fn slow_record_job(&self, job: u64, millis: u64) -> NewJob {
        self.commands.slow_record_job(job, millis)
    }

    /// The backend, as the consumers see it.
    pub fn backend(&self) -> &Arc<dyn BaseQueue> {
        &self.backend
    }

    /// The run sink.
    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// A file of the scene's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The consumer binary with `args`, the scene's URL and sink, and for a
    /// consumer the scene's queue, a short poll wait (backends that cannot
    /// wake a consumer are polled every 50 to 200 ms) and no periodic
    /// commands.
    pub fn consumer(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .args(["--url", &self.url])
            .env_remove("OUTBAND_URL")
            .env(SINK_ENV, &self.sink_url)
            .current_dir(self.dir.path());
        if matches!(args.first(), Some(&("run" | "start" | "restart"))) {
            command
                .args(["--queue", self.commands.queue()])
                .args(["-n", "-d", "0.05", "-m", "0.2"]);
        }
        command
    }

    /// Runs the consumer binary with `args` to its end.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.consumer(args).output().expect("running the consumer")
    }

    fn pid_and_log(&self, name: &str) -> (PathBuf, String, String) {
        let pidfile = self.path(&format!("{name}.pid"));
        let log = self.path(&format!("{name}.log")).display().to_string();
        let shown = pidfile.display().to_string();
        (pidfile, shown, log)
    }

    /// `start -p NAME.pid -l NAME.log` plus `extra`: a daemon; returns its
    /// pid, and panics unless it started.
    #[track_caller]
    pub fn start(&mut self, name: &str, extra: &[impl AsRef<str>]) -> u32 {
        let (pidfile, pid_arg, log_arg) = self.pid_and_log(name);
        let mut args = vec!["start", "-p", &pid_arg, "-l", &log_arg];
        args.extend(extra.iter().map(AsRef::as_ref));
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "start {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !self.pidfiles.contains(&pidfile) {
            self.pidfiles.push(pidfile);
        }
        self.pid(name).expect("a started daemon wrote its pid")
    }

    /// `run -p NAME.pid -l NAME.log` plus `extra`, as a child of this
    /// process; returns its pid once it holds its pid file.
    #[track_caller]
    pub fn spawn_run(&mut self, name: &str, extra: &[impl AsRef<str>]) -> u32 {
        let (_, pid_arg, log_arg) = self.pid_and_log(name);
        let mut args = vec!["run", "-p", &pid_arg, "-l", &log_arg];
        args.extend(extra.iter().map(AsRef::as_ref));
        let child = self
            .consumer(&args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning the consumer");
        let pid = child.id();
        self.children.push(child);
        wait_until(
            &format!("consumer {name} holds its pid file"),
            Duration::from_secs(30),
            || self.pid(name) == Some(pid),
        );
        pid
    }

    /// Waits for the child `pid` started by [`spawn_run`](Self::spawn_run)
    /// to exit, up to `timeout`; returns its exit status, or `None` if it
    /// still runs.
    pub fn wait_child(&mut self, pid: u32, timeout: Duration) -> Option<ExitStatus> {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() == pid)
            .expect("a child of this scene");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the consumer") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The pid in `NAME.pid`, if the file exists.
    pub fn pid(&self, name: &str) -> Option<u32> {
        pid_in(&self.path(&format!("{name}.pid")))
    }

    /// `status -p NAME.pid`: 0 running, 1 dead with its pid file, 3 not running.
    pub fn status(&self, name: &str) -> i32 {
        let (_, pid_arg, _) = self.pid_and_log(name);
        self.cli(&["status", "-p", &pid_arg])
            .status
            .code()
            .unwrap_or(-1)
    }

    /// `stop -p NAME.pid`: SIGTERM, and waits for the daemon's end; panics
    /// unless it stopped.
    #[track_caller]
    pub fn stop(&self, name: &str) {
        let (_, pid_arg, _) = self.pid_and_log(name);
        let out = self.cli(&["stop", "-p", &pid_arg]);
        assert!(
            out.status.success(),
            "stop {name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The log of consumer `name`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// The scene's queue's counts per state.
    pub fn stats(&self) -> QueueStats {
        self.backend
            .stats(self.commands.queue())
            .expect("queue stats")
    }

    /// Waits until at least `jobs` distinct jobs recorded a run in the sink,
    /// up to `timeout`; polls every 50 ms with a query far cheaper than the
    /// queue's stats.
    #[track_caller]
    pub fn wait_recorded(&self, jobs: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let recorded = self.sink.jobs_recorded().expect("reading the sink");
            if recorded >= jobs {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {jobs} jobs did not run within {timeout:?}, {recorded} did",
                self.kind.name()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no job is pending or running, up to `timeout`: first
    /// until `jobs` distinct jobs ran, then on the queue's stats.
    #[track_caller]
    pub fn wait_drained(&self, jobs: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.wait_recorded(jobs, timeout);
        loop {
            let stats = self.stats();
            if stats.pending == 0 && stats.running == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not drained within {timeout:?}: {stats:?}",
                self.kind.name()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Counts the runs of the acknowledged jobs `acked` (sink keys) in the
    /// sink, and the dead jobs in the queue.
    pub fn summary(&self, acked: impl IntoIterator<Item = u64>) -> Summary {
        let runs = self.sink.runs().expect("reading the sink");
        let stats = self.stats();
        let dead: HashSet<u64> = if stats.dead == 0 {
            HashSet::new()
        } else {
            let limit = usize::try_from(stats.dead).unwrap_or(usize::MAX);
            self.backend
                .dead_jobs(self.commands.queue(), 0, limit)
                .expect("listing dead jobs")
                .iter()
                .filter_map(|job| sink_key(&job.command, &job.args))
                .collect()
        };
        let mut summary = Summary {
            dead: stats.dead,
            ..Summary::default()
        };
        for job in acked {
            summary.jobs += 1;
            match runs.get(&job) {
                Some(&n) if n > 0 => {
                    summary.done += 1;
                    summary.duplicates += n - 1;
                }
                _ if dead.contains(&job) => {}
                _ => summary.lost += 1,
            }
        }
        summary
    }

    /// How many runs each job had, from the sink.
    pub fn runs(&self) -> HashMap<u64, u64> {
        self.sink.runs().expect("reading the sink")
    }
}

/// The sink key in the arguments of a scenario command.
fn sink_key(command: &str, args: &[u8]) -> Option<u64> {
    match command {
        RECORD | ASYNC_RECORD | RATED => codec::decode::<(u64,)>(args).ok().map(|(job,)| job),
        SLOW_RECORD | ASYNC_SLOW_RECORD | LIMITED => {
            codec::decode::<(u64, u64)>(args).ok().map(|(job, _)| job)
        }
        _ => None,
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        kill_daemons(&self.pidfiles);
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.sink.destroy();
        if let Some(namespace) = &self.namespace
            && let Ok(queue) = RedisQueue::connect(&self.url)
        {
            let _ = outband_redis::delete_namespace(&queue, namespace);
        }
    }
}
