//! The daemon as a real process: the demo consumer binary, started, signalled
//! and killed by these tests, sharing a backend with them.
//!
//! The backend is `OUTBAND_TEST_URL` if set, else an SQLite file in each
//! test's temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, JobId, JobState, NewJob, codec};

const BIN: &str = env!("CARGO_BIN_EXE_outband-demo-consumer");

/// One test's directory, backend and daemons; kills what it started.
struct World {
    dir: tempfile::TempDir,
    url: String,
    queue: Arc<dyn BaseQueue>,
    started: Vec<PathBuf>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = std::env::var("OUTBAND_TEST_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("jobs.db").display()));
        let queue: Arc<dyn BaseQueue> = if url.starts_with("memory:") {
            outband::open(&url).unwrap()
        } else {
            Arc::new(outband_diesel::DatabaseQueue::open(&url).unwrap())
        };
        World {
            dir,
            url,
            queue,
            started: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Runs the binary with the world's URL and a short poll wait.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .args(["--url", &self.url, "-d", "0.05", "-m", "0.2"])
            .env_remove("OUTBAND_URL")
            .env("OUTBAND_DEMO_TICKS", self.path("ticks"))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
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

    fn status(&self, name: &str) -> i32 {
        let pidfile = self.path_str(&format!("{name}.pid"));
        self.cli(&["status", "-p", &pidfile]).status.code().unwrap()
    }

    fn enqueue(&self, command: &str, args: Vec<u8>) -> JobId {
        self.queue
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
        let job = self.queue.job(id).unwrap().unwrap();
        (job.state, job.attempt)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for pidfile in &self.started {
            if let Some(pid) = pid_in(pidfile) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

fn pid_in(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn start_status_process_stop_and_the_pid_file_is_gone() {
    let mut world = World::new();
    world.start("c", &[]);
    assert_eq!(world.status("c"), 0, "running");
    for i in 0..20 {
        world.record("out", &format!("job {i}"));
    }
    wait_until("20 jobs ran", || world.lines("out").len() == 20);
    let mut lines = world.lines("out");
    lines.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("job {i}")).collect();
    expected.sort();
    assert_eq!(lines, expected, "each job ran exactly once");

    let pidfile = world.path_str("c.pid");
    let out = world.cli(&["stop", "-p", &pidfile]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
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

#[test]
fn two_daemons_on_one_pid_file_the_second_refuses() {
    let mut world = World::new();
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

#[test]
fn kill_9_mid_job_then_restart_runs_the_job_again() {
    let mut world = World::new();
    let pid = world.start("c", &["--lease", "2s"]);
    let id = world.slow_record("out", "slow", 1500);
    wait_until("the slow job runs", || {
        world.state(id).0 == JobState::Running
    });
    kill("-9", pid);
    wait_until("the daemon is dead", || world.status("c") == 1);
    assert_eq!(world.status("c"), 1, "dead, but the pid file remains");

    world.start("c", &["--lease", "2s"]);
    wait_until("the job ran again", || world.lines("out") == ["slow"]);
    wait_until("the job is done", || world.state(id).0 == JobState::Done);
    assert_eq!(
        world.state(id),
        (JobState::Done, 2),
        "the killed attempt counted"
    );
}

#[test]
fn sigterm_lets_running_jobs_finish() {
    let mut world = World::new();
    world.start("c", &["-t", "2"]);
    let ids = [
        world.slow_record("out", "a", 1500),
        world.slow_record("out", "b", 1500),
    ];
    wait_until("both jobs run", || {
        ids.iter().all(|&id| world.state(id).0 == JobState::Running)
    });
    let pidfile = world.path_str("c.pid");
    let out = world.cli(&["stop", "-p", &pidfile]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut lines = world.lines("out");
    lines.sort();
    assert_eq!(lines, ["a", "b"], "both finished before the daemon exited");
    for id in ids {
        assert_eq!(world.state(id), (JobState::Done, 1));
    }
}

#[test]
fn a_second_sigterm_releases_jobs_to_another_consumer() {
    let mut world = World::new();
    let pid = world.start("a", &["-t", "1", "--grace-period", "60s"]);
    let id = world.slow_record("out", "long", 3000);
    wait_until("the long job runs", || {
        world.state(id).0 == JobState::Running
    });
    kill("-TERM", pid);
    wait_until("the first signal is handled", || {
        std::fs::read_to_string(world.path("a.log"))
            .unwrap_or_default()
            .contains("stop signal")
    });
    kill("-TERM", pid);
    wait_until("the daemon exits", || world.status("a") == 3);
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
    wait_until("the second consumer ran it", || {
        world.lines("out") == ["long"]
    });
    wait_until("the job is done", || world.state(id).0 == JobState::Done);
    assert_eq!(world.state(id), (JobState::Done, 1));
}

#[test]
fn sighup_after_the_log_was_moved_writes_a_new_log() {
    let mut world = World::new();
    let pid = world.start("c", &[]);
    let log = world.path("c.log");
    wait_until("the log is written", || log.exists());
    std::fs::rename(&log, world.path("c.log.1")).unwrap();
    kill("-HUP", pid);
    wait_until("the log file is reopened", || log.exists());
    world.record("out", "after rotation");
    wait_until("the job ran", || world.lines("out") == ["after rotation"]);
    wait_until("the new log has the job", || {
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

#[test]
fn a_periodic_command_with_two_consumers_is_enqueued_once_per_tick() {
    let mut world = World::new();
    world.start("a", &[]);
    world.start("b", &[]);
    let start = Instant::now();
    wait_until("a few ticks ran", || world.lines("ticks").len() >= 4);
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

#[test]
fn quiet_stops_claiming_while_running_jobs_go_on() {
    let mut world = World::new();
    world.start("c", &["-t", "2"]);
    let running = world.slow_record("out", "running", 1000);
    wait_until("the job runs", || {
        world.state(running).0 == JobState::Running
    });
    let pidfile = world.path_str("c.pid");
    assert!(world.cli(&["quiet", "-p", &pidfile]).status.success());
    wait_until("quiet is logged", || {
        std::fs::read_to_string(world.path("c.log"))
            .unwrap_or_default()
            .contains("quiet")
    });
    let waiting = world.record("out", "waiting");
    wait_until("the running job finished", || {
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
