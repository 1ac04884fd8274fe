//! The consumer daemon on a `FileQueue`, as real processes: two daemons
//! (`custom-backend-consumer start`) share one job directory with this test,
//! which enqueues into it, then stops them by their pid files.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use custom_backend::FileQueue;
use outband::{BaseQueue, JobState, NewJob, codec};
use outband_testkit::{kill_daemons, pid_in};

const BIN: &str = env!("CARGO_BIN_EXE_custom-backend-consumer");
const JOBS: usize = 60;

fn cli(dir: &Path, args: &[&str]) -> Output {
    let url = format!("file://{}", dir.join("jobs").display());
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--url", &url])
        .env_remove("OUTBAND_URL")
        .current_dir(dir);
    if args.first() == Some(&"start") {
        command.args(["-d", "0.05", "-m", "0.2"]);
    }
    command.output().unwrap()
}

/// Kills what the test started, if it is still there when the test ends.
struct Daemons(Vec<std::path::PathBuf>);

impl Drop for Daemons {
    fn drop(&mut self) {
        kill_daemons(&self.0);
    }
}

#[test]
fn two_daemons_share_a_directory_and_run_each_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut daemons = Daemons(Vec::new());
    let mut pids = Vec::new();
    for name in ["a", "b"] {
        let pidfile = root.join(format!("{name}.pid"));
        let log = root.join(format!("{name}.log"));
        let out = cli(
            root,
            &[
                "start",
                "-p",
                &pidfile.display().to_string(),
                "-l",
                &log.display().to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "start {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        daemons.0.push(pidfile.clone());
        pids.push(pid_in(&pidfile).expect("a started daemon wrote its pid"));
    }

    let backend = FileQueue::open(root.join("jobs")).unwrap();
    let out_file = root.join("ran.txt").display().to_string();
    let ids = backend
        .enqueue_many(
            (0..JOBS)
                .map(|n| {
                    let args = codec::encode(&(out_file.clone(), format!("job-{n}"))).unwrap();
                    NewJob::new("files::record", args).queue("files")
                })
                .collect(),
        )
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let lines = loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= JOBS {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {JOBS} jobs ran in time",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut runs: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let (tag, pid) = line.split_once(' ').unwrap();
        assert!(pids.contains(&pid.parse().unwrap()), "{line}");
        *runs.entry(tag.to_owned()).or_default() += 1;
    }
    assert_eq!(runs.len(), JOBS, "every job ran");
    assert!(runs.values().all(|&n| n == 1), "no job ran twice: {runs:?}");
    // a line is written before its job's outcome is recorded
    while backend.stats("files").unwrap().done < JOBS as u64 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            backend.stats("files").unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in ids {
        assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Done);
    }

    for name in ["a", "b"] {
        let pidfile = root.join(format!("{name}.pid")).display().to_string();
        let out = cli(root, &["stop", "-p", &pidfile]);
        assert!(
            out.status.success(),
            "stop {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            cli(root, &["status", "-p", &pidfile]).status.code(),
            Some(3),
            "{name} is not running after stop"
        );
        assert!(!Path::new(&pidfile).exists(), "stop removed {pidfile}");
    }
}
