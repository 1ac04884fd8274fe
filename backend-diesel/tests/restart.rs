//! A PostgreSQL restart in the middle of a run: no acknowledged enqueue is
//! lost and the consumer resumes on its own.
//!
//! The test starts a private server (`initdb` + `pg_ctl` from
//! `/usr/lib/postgresql/*/bin`, as `nobody` when run as root, on a free port,
//! in a temporary directory), restarts it, and stops it at the end. The
//! shared servers are never touched.
#![cfg(feature = "postgres")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, JobId, JobState, MultiProcessor, NewJob, ProcessorConfig, RetryPolicy};
use outband_diesel::DatabaseQueue;

/// A PostgreSQL server of this test's own, stopped and removed on drop.
struct PrivateServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl PrivateServer {
    /// `None` when no PostgreSQL binaries are installed.
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let as_nobody = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = std::env::temp_dir().join(format!("outband-pg-{}", common::unique_prefix()));
        let server = Self {
            bin,
            dir,
            port,
            as_nobody,
        };
        server.run("mkdir", &["-p", server.path()]);
        let initdb = server.bin.join("initdb");
        let data = server.data();
        server.run(
            initdb.to_str().expect("utf-8"),
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        server.pg_ctl("start");
        Some(server)
    }

    fn path(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp dir")
    }

    fn data(&self) -> String {
        format!("{}/data", self.path())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a command, as `nobody` when we are root (initdb refuses root).
    fn run(&self, program: &str, args: &[&str]) {
        let mut command = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let output = command.args(args).output().expect("runs");
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl ACTION` (`start`, `restart`, or `stop` at once).
    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.path()
        );
        let log = format!("{}/log", self.path());
        let data = self.data();
        let mode = if action == "stop" {
            "immediate"
        } else {
            "fast"
        };
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-m", mode];
        if action != "stop" {
            args.extend(["-o", &options]);
        }
        args.push(action);
        let pg_ctl = self.bin.join("pg_ctl");
        self.run(pg_ctl.to_str().expect("utf-8"), &args);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.pg_ctl("stop");
        } else {
            // a failed assertion must not hide behind a second panic
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pg_ctl("stop")));
        }
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

fn echo_job(value: u64) -> NewJob {
    NewJob::new(
        outband::test_suite::echo::NAME,
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue("restart")
}

/// Enqueues until the server takes the job; returns its id.
fn enqueue_acknowledged(queue: &DatabaseQueue, value: u64) -> JobId {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        match queue.enqueue(echo_job(value)) {
            Ok(id) => return id,
            Err(error) => {
                assert!(
                    error.is_retryable(),
                    "only unavailability is expected: {error}"
                );
                assert!(
                    Instant::now() < give_up,
                    "the server never came back: {error}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn a_database_restart_loses_no_acknowledged_job() {
    let Some(server) = PrivateServer::start() else {
        assert!(
            !common::servers_required(),
            "PostgreSQL binaries are missing"
        );
        eprintln!("notice: skipped, no PostgreSQL binaries in /usr/lib/postgresql");
        return;
    };
    let queue = DatabaseQueue::builder(server.url())
        .max_connections(6)
        .connect_timeout(Duration::from_secs(1))
        .open()
        .expect("open the private server");
    let shared: Arc<dyn BaseQueue> = Arc::new(queue.clone());
    let config = ProcessorConfig::default()
        .queues(["restart"])
        .wait_time(Duration::from_millis(20))
        .lease(Duration::from_secs(2))
        .max_threads(2)
        .retry(RetryPolicy::immediate());
    let processor = MultiProcessor::new(Arc::clone(&shared), config).expect("processor");
    processor.start();

    let mut acknowledged: Vec<JobId> = (0..100).map(|i| enqueue_acknowledged(&queue, i)).collect();
    server.pg_ctl("restart");
    acknowledged.extend((100..200).map(|i| enqueue_acknowledged(&queue, i)));

    // Wait for the consumer to finish everything, recovering the leases of
    // jobs whose outcome was lost with the connection (the manager's step).
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let _ = queue.recover_expired();
        let states: Vec<JobState> = acknowledged
            .iter()
            .filter_map(|&id| queue.job(id).ok().flatten().map(|job| job.state))
            .collect();
        if states.len() == acknowledged.len() && states.iter().all(|&s| s == JobState::Done) {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "the consumer did not finish: {} of {} done",
            states.iter().filter(|&&s| s == JobState::Done).count(),
            acknowledged.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    processor.stop();
    for id in &acknowledged {
        let job = queue
            .job(*id)
            .expect("job")
            .expect("an acknowledged job is never lost");
        assert_eq!(job.state, JobState::Done);
    }
}
