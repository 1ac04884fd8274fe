//! The daemon as a real process: the demo consumer binary, started, signalled
//! and killed by these tests, sharing a backend with them.
//!
//! Every test runs twice: on an SQLite file in its temporary directory, and
//! on the Redis at `REDIS_URL` in a namespace of its own (skipped with a
//! notice when that Redis is unreachable, unless `OUTBAND_REQUIRE_SERVERS=1`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, Cancellation, JobId, JobState, NewJob, codec};
use outband_testkit::{
    kill, kill_daemons, pid_in, redis_url, skip_or_fail, unique_name, wait_until, with_param,
};

const BIN: &str = env!("CARGO_BIN_EXE_outband-demo-consumer");

/// The backends the daemon is tested on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Redis,
}

/// One test's directory, backend and daemons; kills what it started.
struct World {
    dir: tempfile::TempDir,
    url: String,
    backend: Arc<dyn BaseQueue>,
    started: Vec<PathBuf>,
    namespace: Option<String>,
}

impl World {
    /// A fresh world, or `None` (with a notice) when its server is missing
    /// and not required.
    fn new(kind: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (url, backend, namespace): (String, Arc<dyn BaseQueue>, _) = match kind {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                let backend = Arc::new(outband_diesel::DatabaseQueue::open(&url).unwrap());
                (url, backend, None)
            }
            Backend::Redis => {
                let base = redis_url();
                let namespace = unique_name("outband-daemon-test-");
                let url = with_param(&base, "namespace", &namespace);
                let backend = Arc::new(outband_redis::RedisQueue::connect(&url).unwrap());
                if let Err(error) = backend.now() {
                    return skip_or_fail(&format!("Redis at {base}"), &error);
                }
                (url, backend, Some(namespace))
            }
        };
        Some(World {
            dir,
            url,
            backend,
            started: Vec::new(),
            namespace,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The binary with the world's URL and, for a consumer, a short poll
    /// wait.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--url", &self.url])
            .env_remove("OUTBAND_URL")
            .env("OUTBAND_DEMO_TICKS", self.path("ticks"))
            .current_dir(self.dir.path());
        if matches!(args.first(), Some(&("run" | "start" | "restart"))) {
            command.args(["-d", "0.05", "-m", "0.2"]);
        }
        command
    }

    /// Runs the binary to its end.
    fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `start -p NAME.pid -l NAME.log` plus `extra`; panics unless it started.
    fn start(&mut self, name: &str, extra: &[&str]) -> u32 {
        let pidfile = self.path(&format!("{name}.pid"));
        let (pid_arg, log_arg) = (
            pidfile.display().to_string(),
            self.path_str(&format!("{name}.log")),
        );
        let mut args = vec!["start", "-p", &pid_arg, "-l", &log_arg];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.started.push(pidfile.clone());
        pid_in(&pidfile).expect("a started daemon wrote its pid")
    }

    /// `stop -p NAME.pid`; panics unless it reports a clean stop.
    fn stop(&self, name: &str) -> Output {
        let pidfile = self.path_str(&format!("{name}.pid"));
        let out = self.cli(&["stop", "-p", &pidfile]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// `quiet -p NAME.pid`, then waits until the daemon logged it.
    fn quiet(&self, name: &str) {
        let pidfile = self.path_str(&format!("{name}.pid"));
        assert!(self.cli(&["quiet", "-p", &pidfile]).status.success());
        wait_until("quiet is logged", None, || {
            std::fs::read_to_string(self.path(&format!("{name}.log")))
                .unwrap_or_default()
                .contains("quiet")
        });
    }

    fn status(&self, name: &str) -> i32 {
        let pidfile = self.path_str(&format!("{name}.pid"));
        self.cli(&["status", "-p", &pidfile]).status.code().unwrap()
    }

    fn enqueue(&self, command: &str, args: Vec<u8>) -> JobId {
        self.backend
            .enqueue(NewJob::new(command, args).queue("demo"))
            .unwrap()
    }

    fn record(&self, file: &str, tag: &str) -> JobId {
        self.enqueue(
            "demo::record",
            codec::encode(&(self.path_str(file), tag)).unwrap(),
        )
    }

    fn slow_record(&self, file: &str, tag: &str, millis: u64) -> JobId {
        let args = codec::encode(&(self.path_str(file), tag, millis)).unwrap();
        self.enqueue("demo::sleep_then_record", args)
    }

    fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(file))
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn state(&self, id: JobId) -> (JobState, u32) {
        let job = self.backend.job(id).unwrap().unwrap();
        (job.state, job.attempt)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        kill_daemons(&self.started);
        if let Some(namespace) = &self.namespace
            && let Ok(queue) = outband_redis::RedisQueue::connect(&self.url)
        {
            let _ = outband_redis::delete_namespace(&queue, namespace);
        }
    }
}

/// Runs each test on every backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { if let Some(world) = super::World::new(super::Backend::Sqlite) { super::$test(world) } })*
        }
        mod redis {
            $(#[test] fn $test() { if let Some(world) = super::World::new(super::Backend::Redis) { super::$test(world) } })*
        }
    };
}

on_every_backend!(
    start_status_process_stop_and_the_pid_file_is_gone,
    a_running_daemon_is_listed_by_consumers_until_it_stops,
    two_daemons_on_one_pid_file_the_second_refuses,
    kill_9_mid_job_then_restart_runs_the_job_again,
    sigterm_lets_running_jobs_finish,
    sigterm_lets_jobs_claimed_ahead_run,
    a_second_sigterm_releases_jobs_to_another_consumer,
    sighup_after_the_log_was_moved_writes_a_new_log,
    a_periodic_command_with_two_consumers_is_enqueued_once_per_tick,
    quiet_stops_claiming_while_running_jobs_go_on,
    pause_outlives_a_restart_and_resume_runs_the_jobs,
    commands_stats_dead_letters_and_flush,
    the_end_of_the_grace_period_releases_running_jobs,
    a_closed_standard_error_never_stops_the_consumer,
    quiet_also_stops_enqueueing_periodic_commands,
    stop_removes_the_pid_file_a_dead_daemon_left,
    jobs_no_command_serves_are_reported_at_start_in_status_and_in_stats,
    start_logs_beside_its_pid_file_without_l_in_lines_an_operator_reads,
);

fn start_status_process_stop_and_the_pid_file_is_gone(mut world: World) {
    world.start("c", &[]);
    assert_eq!(world.status("c"), 0, "running");
    for i in 0..20 {
        world.record("out", &format!("job {i}"));
    }
    wait_until("20 jobs ran", None, || world.lines("out").len() == 20);
    let mut lines = world.lines("out");
    lines.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("job {i}")).collect();
    expected.sort();
    assert_eq!(lines, expected, "each job ran exactly once");

    let out = world.stop("c");
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped"));
    assert!(
        !world.path("c.pid").exists(),
        "the pid file is removed on a clean exit"
    );
    assert_eq!(world.status("c"), 3, "not running");
    let log = std::fs::read_to_string(world.path("c.log")).unwrap();
    assert!(
        log.contains("demo::record attempt 1/4 started"),
        "one line per job start: {log}"
    );
    assert!(log.contains("done in"), "one line per job finish");
}

/// A started daemon is listed by `consumers`, alive, with its pid and
/// threads, and leaves the list when it stops cleanly.
fn a_running_daemon_is_listed_by_consumers_until_it_stops(mut world: World) {
    let pid = world.start("c", &["-t", "3"]);
    wait_until("the daemon registers", None, || {
        world
            .backend
            .consumers()
            .unwrap()
            .iter()
            .any(|consumer| consumer.info.pid == pid)
    });
    let consumers = world.backend.consumers().unwrap();
    let consumer = consumers
        .iter()
        .find(|consumer| consumer.info.pid == pid)
        .unwrap();
    assert!(consumer.alive, "{consumer:?}");
    assert_eq!(consumer.info.threads, 3, "{consumer:?}");
    assert!(
        consumer.info.queues.contains(&"demo".to_owned()),
        "{consumer:?}"
    );
    assert_eq!(consumer.info.version, env!("CARGO_PKG_VERSION"));
    let out = world.cli(&["consumers"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let listing = stdout_of(&out);
    let line = listing
        .lines()
        .find(|line| line.contains(&consumer.info.id))
        .unwrap_or_else(|| panic!("the daemon is listed: {listing}"));
    assert!(line.contains(&format!(" {pid} ")), "{line}");
    assert!(line.ends_with("alive"), "{line}");

    world.stop("c");
    assert!(
        world
            .backend
            .consumers()
            .unwrap()
            .iter()
            .all(|consumer| consumer.info.pid != pid),
        "a clean stop unregisters the consumer"
    );
    let listing = stdout_of(&world.cli(&["consumers"]));
    assert!(!listing.contains(&consumer.info.id), "{listing}");
}

fn two_daemons_on_one_pid_file_the_second_refuses(mut world: World) {
    let first = world.start("c", &[]);
    let pidfile = world.path_str("c.pid");
    let out = world.cli(&["start", "-p", &pidfile]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already running") && stderr.contains(&first.to_string()),
        "{stderr}"
    );
    let out = world.cli(&["run", "-p", &pidfile]);
    assert!(!out.status.success(), "run refuses too");
    assert_eq!(world.status("c"), 0, "the first one still runs");
    assert_eq!(pid_in(&world.path("c.pid")), Some(first));
}

fn kill_9_mid_job_then_restart_runs_the_job_again(mut world: World) {
    let pid = world.start("c", &["--lease", "2s"]);
    let id = world.slow_record("out", "slow", 1500);
    wait_until("the slow job runs", None, || {
        world.state(id).0 == JobState::Running
    });
    kill("-9", pid);
    wait_until("the daemon is dead", None, || world.status("c") == 1);
    assert_eq!(world.status("c"), 1, "dead, but the pid file remains");

    world.start("c", &["--lease", "2s"]);
    wait_until("the job ran again", None, || world.lines("out") == ["slow"]);
    wait_until("the job is done", None, || {
        world.state(id).0 == JobState::Done
    });
    assert_eq!(
        world.state(id),
        (JobState::Done, 2),
        "the killed attempt counted"
    );
}

fn sigterm_lets_running_jobs_finish(mut world: World) {
    world.start("c", &["-t", "2"]);
    let ids = [
        world.slow_record("out", "a", 1500),
        world.slow_record("out", "b", 1500),
    ];
    wait_until("both jobs run", None, || {
        ids.iter().all(|&id| world.state(id).0 == JobState::Running)
    });
    world.stop("c");
    let mut lines = world.lines("out");
    lines.sort();
    assert_eq!(lines, ["a", "b"], "both finished before the daemon exited");
    for id in ids {
        assert_eq!(world.state(id), (JobState::Done, 1));
    }
}

/// Jobs claimed ahead (`--prefetch`) are held, not running, when SIGTERM
/// comes: the daemon runs them before it exits, and releases nothing. It
/// serves only the sync commands' queue, with no periodic commands, so that
/// it holds at most `threads + prefetch` leases: these three jobs.
fn sigterm_lets_jobs_claimed_ahead_run(mut world: World) {
    world.start(
        "c",
        &["-t", "1", "--prefetch", "2", "--queue", "demo", "-n"],
    );
    let ids = [
        world.slow_record("out", "a", 1500),
        world.slow_record("out", "b", 100),
        world.slow_record("out", "c", 100),
    ];
    wait_until("one job runs, two are claimed ahead", None, || {
        ids.iter().all(|&id| world.state(id).0 == JobState::Running)
    });
    world.stop("c");
    let log = std::fs::read_to_string(world.path("c.log")).unwrap();
    // the first job may still be on its way to the thread at the signal
    let held = [
        "for 1 running jobs and 2 more claimed",
        "for 0 running jobs and 3 more claimed",
    ];
    assert!(
        held.iter().any(|line| log.contains(line)),
        "the signal found three jobs held: {log}"
    );
    assert!(
        log.contains("outband consumer stopped: 0 running jobs released"),
        "{log}"
    );
    assert_eq!(world.lines("out"), ["a", "b", "c"], "all three ran");
    for id in ids {
        assert_eq!(world.state(id), (JobState::Done, 1));
    }
}

fn a_second_sigterm_releases_jobs_to_another_consumer(mut world: World) {
    let pid = world.start("a", &["-t", "1", "--grace-period", "60s"]);
    let id = world.slow_record("out", "long", 3000);
    wait_until("the long job runs", None, || {
        world.state(id).0 == JobState::Running
    });
    kill("-TERM", pid);
    wait_until("the first signal is handled", None, || {
        std::fs::read_to_string(world.path("a.log"))
            .unwrap_or_default()
            .contains("stop signal")
    });
    kill("-TERM", pid);
    wait_until("the daemon exits", None, || world.status("a") == 3);
    assert!(
        world.lines("out").is_empty(),
        "the job did not finish in the first daemon"
    );
    assert_eq!(
        world.state(id),
        (JobState::Pending, 0),
        "released, the attempt not counted"
    );

    world.start("b", &[]);
    wait_until("the second consumer ran it", None, || {
        world.lines("out") == ["long"]
    });
    wait_until("the job is done", None, || {
        world.state(id).0 == JobState::Done
    });
    assert_eq!(world.state(id), (JobState::Done, 1));
}

fn sighup_after_the_log_was_moved_writes_a_new_log(mut world: World) {
    let pid = world.start("c", &[]);
    let log = world.path("c.log");
    wait_until("the log is written", None, || log.exists());
    std::fs::rename(&log, world.path("c.log.1")).unwrap();
    kill("-HUP", pid);
    wait_until("the log file is reopened", None, || log.exists());
    world.record("out", "after rotation");
    wait_until("the job ran", None, || {
        world.lines("out") == ["after rotation"]
    });
    wait_until("the new log has the job", None, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("demo::record")
    });
    let old = std::fs::read_to_string(world.path("c.log.1")).unwrap();
    assert!(
        !old.contains("demo::record"),
        "nothing written to the moved file after SIGHUP"
    );
}

fn a_periodic_command_with_two_consumers_is_enqueued_once_per_tick(mut world: World) {
    world.start("a", &[]);
    world.start("b", &[]);
    let start = Instant::now();
    wait_until("a few ticks ran", None, || world.lines("ticks").len() >= 4);
    std::thread::sleep(Duration::from_secs(2));
    for name in ["a", "b"] {
        let pidfile = world.path_str(&format!("{name}.pid"));
        assert!(world.cli(&["stop", "-p", &pidfile]).status.success());
    }
    let seconds = start.elapsed().as_secs() + 2;
    let ticks = world.lines("ticks");
    assert!(
        ticks.len() as u64 <= seconds,
        "{} ticks ran in about {seconds} s with two consumers: some tick ran twice",
        ticks.len()
    );
}

fn quiet_stops_claiming_while_running_jobs_go_on(mut world: World) {
    world.start("c", &["-t", "2"]);
    let running = world.slow_record("out", "running", 1000);
    wait_until("the job runs", None, || {
        world.state(running).0 == JobState::Running
    });
    world.quiet("c");
    let waiting = world.record("out", "waiting");
    wait_until("the running job finished", None, || {
        world.state(running).0 == JobState::Done
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        world.state(waiting),
        (JobState::Pending, 0),
        "nothing new was claimed"
    );
    assert_eq!(world.status("c"), 0, "still running");
}

fn pause_outlives_a_restart_and_resume_runs_the_jobs(mut world: World) {
    let out = world.cli(&["pause", "demo", "later"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = stdout_of(&out);
    assert!(said.contains("queue `demo`: paused"), "{said}");
    assert!(
        said.contains("queue `later`: paused; it holds no job yet"),
        "a queue with no job is paused and said to be empty: {said}"
    );
    let said = stdout_of(&world.cli(&["pause", "demo"]));
    assert!(said.contains("paused already"), "{said}");

    world.start("c", &["-t", "2"]);
    let ids: Vec<JobId> = (0..3)
        .map(|i| world.record("out", &format!("job {i}")))
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let stats = stdout_of(&world.cli(&["stats"]));
    let row = |name: &str| {
        stats
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {stats}"))
            .to_owned()
    };
    assert!(row("demo").ends_with("paused"), "{stats}");
    assert!(
        row("later").ends_with("paused"),
        "a paused queue with no job is listed: {stats}"
    );
    world.stop("c");
    world.start("c", &["-t", "2"]);
    std::thread::sleep(Duration::from_millis(800));
    for &id in &ids {
        assert_eq!(world.state(id), (JobState::Pending, 0), "job {id}");
    }
    assert!(world.lines("out").is_empty(), "no job ran while paused");

    let said = stdout_of(&world.cli(&["resume", "demo", "later"]));
    assert!(said.contains("queue `demo`: resumed"), "{said}");
    wait_until("the resumed queue's jobs ran", None, || {
        world.lines("out").len() == 3
    });
    let said = stdout_of(&world.cli(&["resume", "demo"]));
    assert!(said.contains("not paused; nothing changed"), "{said}");
    assert!(stdout_of(&world.cli(&["stats", "--queue", "demo"])).contains(" on"));
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bench` runs where the daemon was built with its `bench` feature, and
/// says how to get it where not.
fn assert_the_bench_runs_where_built(world: &World) {
    let out = world.cli(&["bench", "--jobs", "200"]);
    if cfg!(feature = "bench") {
        let bench = stdout_of(&out);
        assert!(
            bench.contains("multi processor, 4 threads"),
            "the bench command runs: {bench}"
        );
    } else {
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("`bench` feature"), "{stderr}");
    }
}

fn commands_stats_dead_letters_and_flush(mut world: World) {
    assert_the_bench_runs_where_built(&world);
    let listed = stdout_of(&world.cli(&["commands"]));
    assert!(listed.contains("demo::sleep_then_record"), "{listed}");
    assert!(
        !listed.contains("outband::bench"),
        "the bench's commands are not the binary's: {listed}"
    );
    assert!(
        listed.contains("* * * * * *"),
        "the periodic command shows its schedule: {listed}"
    );

    // two jobs whose arguments do not decode: the consumer sends them to dead
    let (first, second) = (
        world.enqueue("demo::record", vec![0xde, 0xad]),
        world.enqueue("demo::record", vec![1]),
    );
    world.start("c", &["-n"]);
    wait_until("both are dead", None, || {
        [first, second]
            .iter()
            .all(|&id| world.state(id).0 == JobState::Dead)
    });
    let pidfile = world.path_str("c.pid");
    assert!(world.cli(&["stop", "-p", &pidfile]).status.success());

    let listed = stdout_of(&world.cli(&["dead", "list", "--queue", "demo"]));
    assert!(
        listed.contains(&format!("{first}\tdemo\tdemo::record")),
        "{listed}"
    );
    assert!(
        listed.contains("undecodable arguments"),
        "the reason is shown: {listed}"
    );
    let stats = stdout_of(&world.cli(&["stats", "--queue", "demo"]));
    let row = stats
        .lines()
        .find(|l| l.starts_with("demo "))
        .unwrap_or_default();
    assert_eq!(
        row.split_whitespace().nth(4),
        Some("2"),
        "two dead jobs: {stats}"
    );
    assert_eq!(
        stats
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(5)),
        Some("cancelled"),
        "the cancelled column follows dead: {stats}"
    );
    assert_eq!(
        row.split_whitespace().nth(5),
        Some("0"),
        "none cancelled: {stats}"
    );

    // `job ID` shows a job as stored, its arguments through the command's
    // types where they decode
    let shown = stdout_of(&world.cli(&["job", &first.to_string()]));
    assert!(shown.contains(&format!("job {first}\n")), "{shown}");
    assert!(
        shown.contains("demo::record (queue demo, priority 0)"),
        "{shown}"
    );
    assert!(shown.contains("state     dead, attempt 1/4"), "{shown}");
    assert!(shown.contains("error     undecodable arguments"), "{shown}");
    assert!(
        shown.contains("arguments (the arguments cannot be decoded"),
        "{shown}"
    );
    let readable = world.record("out", "shown");
    let shown = stdout_of(&world.cli(&["job", &readable.to_string()]));
    assert!(shown.contains("state     pending, attempt 0/4"), "{shown}");
    assert!(
        shown.contains(&format!(
            "arguments {{\"path\": {:?}, \"tag\": \"shown\"}}",
            world.path_str("out")
        )),
        "{shown}"
    );
    let unknown = world.cli(&["job", "987654321"]);
    assert_eq!(unknown.status.code(), Some(1), "an unknown id fails");
    assert!(String::from_utf8_lossy(&unknown.stdout).contains("job 987654321: not found"));
    // `jobs --state S`: a line per job, newest first, and how to go on
    let job_ids = |listed: &str| -> Vec<String> {
        listed
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .filter_map(|l| l.split('\t').next().map(str::to_owned))
            .collect()
    };
    let dead = ["jobs", "--state", "dead", "--queue", "demo"];
    let listed = stdout_of(&world.cli(&dead));
    assert_eq!(
        job_ids(&listed),
        [second.to_string(), first.to_string()],
        "{listed}"
    );
    assert!(listed.contains("undecodable arguments"), "{listed}");
    let pending = stdout_of(&world.cli(&["jobs", "--queue", "demo"]));
    assert!(
        pending.starts_with(&format!(
            "{readable}\tdemo\tdemo::record\tpending\tattempt 0/4\tenqueued "
        )),
        "pending is the default state: {pending}"
    );
    let one = stdout_of(&world.cli(&[&dead[..], &["--limit", "1"]].concat()));
    assert_eq!(job_ids(&one), [second.to_string()], "{one}");
    let before = one
        .split("--before ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("a page of one says how to go on: {one}"));
    let rest = stdout_of(&world.cli(&[&dead[..], &["--before", before]].concat()));
    assert_eq!(job_ids(&rest), [first.to_string()], "{rest}");
    let other =
        stdout_of(&world.cli(&[&dead[..], &["--command", "demo::sleep_then_record"]].concat()));
    assert!(job_ids(&other).is_empty(), "{other}");
    let bad = world.cli(&["jobs", "--state", "lost"]);
    assert_eq!(bad.status.code(), Some(2), "an unknown state is refused");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("must be one of pending, running"),
        "{bad:?}"
    );
    // `cancel ID…`: a pending job at once; a finished or unknown one is
    // left as it is, and the exit code says so
    let cancelled = world.cli(&["cancel", &readable.to_string(), "--reason", "not wanted"]);
    assert_eq!(cancelled.status.code(), Some(0));
    assert!(stdout_of(&cancelled).contains(&format!("job {readable}: cancelled")));
    let job = world.backend.job(readable).unwrap().expect("kept");
    assert_eq!(
        (job.state, job.last_error.as_deref()),
        (JobState::Cancelled, Some("not wanted"))
    );
    let again = world.cli(&["cancel", &readable.to_string(), "987654321"]);
    assert_eq!(again.status.code(), Some(1), "nothing changed");
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        said.contains(&format!(
            "job {readable}: cancelled already; nothing changed"
        )),
        "{said}"
    );
    assert!(said.contains("job 987654321: not found"), "{said}");
    let shown = stdout_of(&world.cli(&["job", &readable.to_string()]));
    assert!(shown.contains("state     cancelled"), "{shown}");

    assert!(stdout_of(&world.cli(&["dead", "retry", &first.to_string()])).contains("retried"));
    assert_eq!(world.state(first), (JobState::Pending, 0));
    assert!(stdout_of(&world.cli(&["dead", "delete", &second.to_string()])).contains("deleted"));
    assert!(world.backend.job(second).unwrap().is_none());
    let again = world.cli(&["dead", "delete", &second.to_string()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "deleting what is not dead fails"
    );

    // `dead retry --all`: every dead job of the queue back to pending
    let more = [
        world.enqueue("demo::record", vec![2]),
        world.enqueue("demo::record", vec![3]),
    ];
    let claimed = world
        .backend
        .claim("demo", 10, Duration::from_secs(60))
        .unwrap();
    assert_eq!(claimed.len(), 3, "the retried job and the two new ones");
    // a job's progress, as a command reports it through its context
    let progress = outband::Progress::new(0.4, "reading rows");
    assert_eq!(
        world
            .backend
            .progress(&claimed[0].lease, &progress)
            .unwrap(),
        outband::Completion::Applied
    );
    let shown = stdout_of(&world.cli(&["job", &claimed[0].job.id.to_string()]));
    assert!(shown.contains("progress  40 %: reading rows"), "{shown}");
    assert!(
        !shown.contains("timeout"),
        "no timeout, none shown: {shown}"
    );
    let limited = world
        .backend
        .enqueue(
            NewJob::new("demo::record", vec![9])
                .queue("demo")
                .timeout(Duration::from_secs(90)),
        )
        .unwrap();
    let shown = stdout_of(&world.cli(&["job", &limited.to_string()]));
    assert!(shown.contains("timeout   1m 30s"), "{shown}");
    assert_eq!(
        world.backend.cancel(limited, "not wanted").unwrap(),
        Cancellation::Cancelled
    );
    for job in &claimed {
        let error = "dead by hand".to_owned();
        world
            .backend
            .complete(&job.lease, outband::Outcome::Dead { error })
            .unwrap();
    }
    let retried = stdout_of(&world.cli(&["dead", "retry", "--all", "--queue", "demo"]));
    assert!(
        retried.contains("retried 3 dead jobs of queue `demo`"),
        "{retried}"
    );
    for id in [first, more[0], more[1]] {
        assert_eq!(world.state(id), (JobState::Pending, 0));
    }
    let nothing_left = stdout_of(&world.cli(&["dead", "retry", "--all", "--queue", "demo"]));
    assert!(
        nothing_left.contains("retried 0 dead jobs"),
        "{nothing_left}"
    );

    for i in 0..3 {
        world.record("out", &format!("{i}"));
    }
    // no answer on standard input: nothing is deleted
    let kept = stdout_of(&world.cli(&["flush", "--queue", "demo"]));
    assert!(kept.contains("left as it is"), "{kept}");
    assert_eq!(world.backend.len("demo").unwrap(), 6);
    let flushed = stdout_of(&world.cli(&["flush", "--queue", "demo", "--yes"]));
    assert!(flushed.contains("deleted 6 pending jobs"), "{flushed}");
    assert_eq!(world.backend.len("demo").unwrap(), 0);
}

fn the_end_of_the_grace_period_releases_running_jobs(mut world: World) {
    let pid = world.start("c", &["--grace-period", "1s"]);
    let id = world.slow_record("out", "too long", 30_000);
    wait_until("the long job runs", None, || {
        world.state(id).0 == JobState::Running
    });
    kill("-TERM", pid);
    wait_until("the daemon exits after its grace period", None, || {
        world.status("c") == 3
    });
    assert_eq!(
        world.state(id),
        (JobState::Pending, 0),
        "released, the attempt not counted"
    );
    let log = std::fs::read_to_string(world.path("c.log")).unwrap();
    assert!(log.contains("grace period over"), "{log}");
    assert_the_bench_runs_where_built(&world);
}

/// Once its standard error is closed (`run 2>&1 | head -3` after `head`
/// exits), the consumer goes on: every job runs, and SIGTERM ends it
/// cleanly, where a log line that could not be written used to panic.
fn a_closed_standard_error_never_stops_the_consumer(mut world: World) {
    let mut child = world
        .command(&["run", "-t", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read up to the start-up line, then close the pipe's reading end
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut read = String::new();
    while !read.contains("outband consumer") {
        assert!(
            stderr.read_line(&mut read).unwrap() > 0,
            "no start-up line: {read}"
        );
    }
    drop(stderr);
    let ids: Vec<JobId> = (0..20)
        .map(|i| world.record("out", &format!("{i}")))
        .collect();
    wait_until("the 20 jobs ran", None, || world.lines("out").len() == 20);
    wait_until("the 20 jobs are done", None, || {
        ids.iter().all(|&id| world.state(id).0 == JobState::Done)
    });
    kill("-TERM", child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "ended cleanly: {status:?}");
    world.started.clear();
}

/// A quieted daemon leaves periodic commands to other consumers: it
/// enqueues no tick it would not run.
fn quiet_also_stops_enqueueing_periodic_commands(mut world: World) {
    world.start("c", &[]);
    wait_until("a tick ran", None, || !world.lines("ticks").is_empty());
    world.quiet("c");
    // a tick enqueued as the signal came may still land
    std::thread::sleep(Duration::from_millis(1200));
    let pending = world.backend.len("demo").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        world.backend.len("demo").unwrap(),
        pending,
        "no tick enqueued after quiet"
    );
}

fn stop_removes_the_pid_file_a_dead_daemon_left(mut world: World) {
    let pid = world.start("c", &[]);
    kill("-9", pid);
    wait_until("the daemon is dead", None, || world.status("c") == 1);
    let pidfile = world.path_str("c.pid");
    let out = stdout_of(&world.cli(&["stop", "-p", &pidfile]));
    assert!(out.contains("died") && out.contains("removed"), "{out}");
    assert!(!world.path("c.pid").exists());
    assert_eq!(world.status("c"), 3, "not running");
}

/// A binary that does not link a crate's commands does not serve their
/// queue: those jobs wait, and the consumer says so at start (on the
/// terminal and in its log), as do `status` and `stats`.
fn jobs_no_command_serves_are_reported_at_start_in_status_and_in_stats(mut world: World) {
    world
        .backend
        .enqueue(NewJob::new("other_crate::send_mail", vec![]).queue("mail"))
        .unwrap();
    let (pid_arg, log_arg) = (world.path_str("c.pid"), world.path_str("c.log"));
    let out = world.cli(&["start", "-p", &pid_arg, "-l", &log_arg, "-n"]);
    world.started.push(world.path("c.pid"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = "queue `mail` has 1 pending jobs, and no command of this binary serves it";
    assert!(stderr.contains(warning), "on the terminal: {stderr}");
    let log = std::fs::read_to_string(world.path("c.log")).unwrap();
    assert!(log.contains(warning), "in the log: {log}");
    let status = stdout_of(&world.cli(&["status", "-p", &pid_arg]));
    assert!(status.contains(warning), "in status: {status}");
    let stats = stdout_of(&world.cli(&["stats"]));
    assert!(stats.contains(warning), "in stats: {stats}");
    world.stop("c");
}

/// Without `-l`, `start` logs beside its pid file; each line reads time,
/// level, target and message, and the start-up line gives the threads.
fn start_logs_beside_its_pid_file_without_l_in_lines_an_operator_reads(mut world: World) {
    let pidfile = world.path_str("c.pid");
    let out = world.cli(&["start", "-p", &pidfile, "-t", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    world.started.push(world.path("c.pid"));
    world.record("out", "x");
    wait_until("the job ran", None, || world.lines("out") == ["x"]);
    // status without a URL checks no backend, and creates no SQLite file
    let status = bare(world.dir.path(), &["status", "-p", &pidfile]);
    assert_eq!(status.status.code(), Some(0));
    assert!(!world.path("outband.db").exists());
    world.stop("c");
    let log = std::fs::read_to_string(world.path("c.log")).unwrap();
    let started = log
        .lines()
        .find(|line| line.contains("outband consumer"))
        .unwrap_or_else(|| panic!("no start-up line: {log}"));
    // 2026-12-04T17:58:46.123+00:00 INFO  outband_daemon::consumer: outband consumer … started: …
    let (time, rest) = started.split_once(' ').unwrap();
    assert!(
        time.len() == 29 && time.as_bytes()[10] == b'T' && time[..4].parse::<u16>().is_ok(),
        "a time first: {started}"
    );
    assert!(
        rest.starts_with("INFO  outband_daemon::consumer: outband consumer "),
        "level, target, message: {started}"
    );
    assert!(started.contains("3 threads"), "{started}");
    assert!(!log.contains(".rs:"), "no source paths: {log}");
}

/// The binary, with no URL but the one given.
fn bare(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("OUTBAND_URL")
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `start` waits until the daemon opened its backend, and a daemon that
/// cannot fails `start` with the reason on the terminal, leaving no pid
/// file behind.
#[test]
fn start_fails_at_once_with_the_reason_when_the_backend_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("c.pid").display().to_string();
    let url = format!("sqlite://{}/missing/jobs.db", dir.path().display());
    let out = bare(dir.path(), &["start", "-p", &pidfile, "--url", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("did not start"), "{stderr}");
    assert!(stderr.contains("open the database"), "the reason: {stderr}");
    assert!(!dir.path().join("c.pid").exists(), "no pid file left");
    assert!(!dir.path().join("missing").exists());
}

#[cfg(feature = "postgres")]
#[test]
fn start_fails_at_once_when_the_database_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("c.pid").display().to_string();
    let url = "postgres://postgres:hunter2-secret@127.0.0.1:5432/outband_no_such_database";
    let out = bare(dir.path(), &["start", "-p", &pidfile, "--url", url]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not start"), "{stderr}");
    assert!(!stderr.contains("hunter2-secret"), "no password: {stderr}");
    assert!(!dir.path().join("c.pid").exists(), "no pid file left");
}

/// A pid file or log that cannot be written is refused at once, with the
/// reason, and no folder is created.
#[test]
fn start_refuses_a_pid_file_or_log_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/jobs.db", dir.path().display());
    let missing = dir.path().join("no/such/folder");
    let pid_in_missing = missing.join("c.pid").display().to_string();
    let out = bare(dir.path(), &["start", "-p", &pid_in_missing, "--url", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("the pid file's folder"),
        "{}",
        stderr_of(&out)
    );

    let out = bare(
        dir.path(),
        &["start", "-p", "/proc/outband-test.pid", "--url", &url],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("did not start") && stderr.contains("/proc/outband-test.pid"),
        "{stderr}"
    );

    let pidfile = dir.path().join("c.pid").display().to_string();
    let log_in_missing = missing.join("c.log").display().to_string();
    for command in ["start", "run"] {
        let out = bare(
            dir.path(),
            &[
                command,
                "-p",
                &pidfile,
                "-l",
                &log_in_missing,
                "--url",
                &url,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            stderr_of(&out).contains("the log file's folder"),
            "{command}: {}",
            stderr_of(&out)
        );
    }
    assert!(!dir.path().join("no").exists(), "no folder created");
    assert!(!dir.path().join("c.pid").exists(), "no pid file left");
}

/// An unreachable backend at start is a warning on the terminal; the
/// daemon starts and keeps trying.
#[test]
fn start_warns_of_an_unreachable_backend() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("c.pid");
    let pid_arg = pidfile.display().to_string();
    let url = "redis://:hunter2-secret@127.0.0.1:1/";
    let out = bare(dir.path(), &["start", "-p", &pid_arg, "-n", "--url", url]);
    let stderr = stderr_of(&out);
    let pid = pid_in(&pidfile);
    if let Some(pid) = pid {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the backend is unreachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-secret"), "no password: {stderr}");
    assert!(pid.is_some(), "the daemon runs");
}

/// Poll flags are checked, with the flag and the rule in the message.
#[test]
fn bad_poll_flags_are_refused_by_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["run", "-d=-1"][..], "greater than 0"),
        (&["run", "-d", "-1"], "greater than 0"),
        (&["run", "-b", "0.5"], "never shrinks"),
        (&["run", "-m", "0"], "greater than 0"),
        (&["run", "-d", "2", "-m", "1"], "at least the first"),
    ] {
        let out = bare(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains(says),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    assert!(!dir.path().join("outband.db").exists(), "nothing opened");
}

/// `--version` and `--help` name the program, and each command's help
/// shows its own options.
#[test]
fn the_binary_names_itself_and_each_command_shows_its_own_options() {
    let dir = tempfile::tempdir().unwrap();
    let version = String::from_utf8_lossy(&bare(dir.path(), &["--version"]).stdout).into_owned();
    assert!(
        version.starts_with("outband-demo-consumer 0.1.0 (outband-daemon "),
        "{version}"
    );
    let help = String::from_utf8_lossy(&bare(dir.path(), &["stop", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--pidfile") && help.contains("--grace-period"),
        "{help}"
    );
    assert!(
        !help.contains("--threads") && !help.contains("--prefetch"),
        "{help}"
    );
}
