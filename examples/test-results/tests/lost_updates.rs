//! The service as it runs in production: the `serve` process and two consumer
//! daemons (`start -p …`, four threads each) of the built binary, in a
//! temporary directory, fed over HTTP by five client threads that report
//! 10,000 test-case results for 50 CI jobs.
//!
//! - keyed (what `serve` does): every CI job's record counts exactly the
//!   results sent for it;
//! - unkeyed (`serve --unkeyed`): the same check finds records short. That
//!   test exists to prove that the check can fail, so that the keyed test's
//!   pass means something.
//!
//! Each runs on the default backend (`OUTBAND_URL` unset: `outband.db` in the
//! directory), on the Redis at `REDIS_URL` in a namespace of its own, and on
//! the PostgreSQL at `PG_DATABASE_URL` with tables of its own prefix (with
//! the `postgres` feature, which `--all-features` turns on, as CI does); the two
//! servers are skipped with a notice when unreachable, unless
//! `OUTBAND_REQUIRE_SERVERS=1`. The records always live in the application's
//! own `test-results.db` in the directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::BaseQueue;
#[cfg(feature = "postgres")]
use outband_testkit::pg_url;
use outband_testkit::{kill, kill_daemons, redis_url, skip_or_fail, unique_name, with_param};

const BIN: &str = env!("CARGO_BIN_EXE_test-results");
const CI_JOBS: usize = 50;
const TEST_CASES_PER_JOB: usize = 200;
const CLIENTS: usize = 5;
const CONSUMERS: usize = 2;
const THREADS_PER_CONSUMER: &str = "4";
/// Only so that a broken run ends; nothing is asserted about speed.
const PATIENCE: Duration = Duration::from_secs(300);

/// Where the queue is.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// `OUTBAND_URL` unset: the SQLite file `outband.db` in the directory.
    DefaultSqlite,
    Redis,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The passed, failed and skipped counts of one CI job.
type Counts = [i64; 3];

/// One test's directory, queue and processes; kills whatever still runs and
/// removes the server-side data when dropped.
struct Service {
    dir: tempfile::TempDir,
    /// `--url` for the processes; `None` leaves `OUTBAND_URL` unset.
    url: Option<String>,
    /// The test's own handle on the same backend, to watch the jobs.
    backend: Arc<dyn BaseQueue>,
    server: Option<Child>,
    pidfiles: Vec<PathBuf>,
    redis_namespace: Option<String>,
}

impl Service {
    /// A fresh service directory and queue, or `None` (after a notice) when
    /// the backend's server is unreachable and servers are not required.
    fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let unique = unique_name("tr");
        let (url, queue, redis_namespace): (Option<String>, Arc<dyn BaseQueue>, _) = match backend {
            Backend::DefaultSqlite => {
                let file = dir.path().join("outband.db");
                let queue =
                    outband_diesel::DatabaseQueue::open(&format!("sqlite://{}", file.display()))
                        .unwrap();
                (None, Arc::new(queue), None)
            }
            Backend::Redis => {
                let base = redis_url();
                let url = with_param(&base, "namespace", &unique);
                let backend = outband_redis::RedisQueue::connect(&url).unwrap();
                if let Err(error) = backend.now() {
                    return skip_or_fail(&format!("Redis at {base}"), &error);
                }
                (Some(url), Arc::new(backend), Some(unique))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let base = pg_url();
                let prefix = format!("{unique}_");
                // Temporary: the tables of this prefix go when the test's handle does.
                let opened = outband_diesel::DatabaseQueue::builder(&base)
                    .prefix(&prefix)
                    .temporary(true)
                    .open();
                match opened {
                    Ok(queue) => (
                        Some(with_param(&base, "prefix", &prefix)),
                        Arc::new(queue),
                        None,
                    ),
                    Err(error @ outband::Error::Unavailable(_)) => {
                        return skip_or_fail(&base, &error);
                    }
                    Err(error) => panic!("cannot open {base}: {error}"),
                }
            }
        };
        Some(Service {
            dir,
            url,
            backend: queue,
            server: None,
            pidfiles: Vec::new(),
            redis_namespace,
        })
    }

    /// The binary, in the directory, with the service's queue and no
    /// settings inherited from the caller's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("OUTBAND_URL")
            .env_remove("TEST_RESULTS_DB");
        if let Some(url) = &self.url {
            command.args(["--url", url]);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `serve` on a free port and returns its base URL.
    fn serve(&mut self, keyed: bool) -> String {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        if !keyed {
            args.push("--unkeyed");
        }
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let mut child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        self.server = Some(child);
        let address = first_line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .map(|address| address.trim_end_matches(','))
            .unwrap_or_else(|| panic!("serve printed no address: {first_line:?}"));
        format!("http://{address}")
    }

    /// Starts a consumer daemon with a pid file and a log of its own.
    fn start_consumer(&mut self, name: &str) {
        let pidfile = self.dir.path().join(format!("{name}.pid"));
        let logfile = self.dir.path().join(format!("{name}.log"));
        let (pid_arg, log_arg) = (pidfile.display().to_string(), logfile.display().to_string());
        // short polls: SQLite cannot wake a consumer, and waits back off
        let out = self.run(&[
            "start",
            "-p",
            &pid_arg,
            "-l",
            &log_arg,
            "-t",
            THREADS_PER_CONSUMER,
            "-d",
            "0.02",
            "-m",
            "0.2",
        ]);
        assert!(out.status.success(), "start {name}: {}", text(&out));
        self.pidfiles.push(pidfile);
    }

    /// `stop -p` for each consumer: SIGTERM, then it must end by itself.
    fn stop_consumers(&mut self) {
        for pidfile in std::mem::take(&mut self.pidfiles) {
            let out = self.run(&["stop", "-p", &pidfile.display().to_string()]);
            assert!(
                out.status.success() && text(&out).contains("stopped pid"),
                "stop {}: {}",
                pidfile.display(),
                text(&out)
            );
        }
    }

    /// SIGTERM to the server, which must then exit cleanly.
    fn stop_server(&mut self) {
        let mut server = self.server.take().expect("the server runs");
        kill("-TERM", server.id());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = server.try_wait().unwrap() {
                assert!(status.success(), "serve ended with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until no job is pending or running, and returns the numbers done
    /// and dead.
    fn wait_for_jobs(&self, expected: u64) -> (u64, u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.backend.stats("test-results").unwrap();
            if stats.done + stats.dead >= expected && stats.pending == 0 && stats.running == 0 {
                return (stats.done, stats.dead);
            }
            assert!(
                Instant::now() < deadline,
                "timed out with {stats:?}; see the logs in {}",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The records as `report` prints them.
    fn report(&self) -> BTreeMap<String, Counts> {
        let out = self.run(&["report"]);
        assert!(out.status.success(), "report: {}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let count = |i: usize| words[i].parse::<i64>().unwrap();
                (words[0].to_owned(), [count(1), count(2), count(3)])
            })
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        kill_daemons(&self.pidfiles);
        if let (Some(namespace), Some(url)) = (&self.redis_namespace, &self.url)
            && let Ok(queue) = outband_redis::RedisQueue::connect(url)
        {
            let _ = outband_redis::delete_namespace(&queue, namespace);
        }
    }
}

/// Runs the whole scenario and returns what was sent and what was recorded,
/// per CI job. Every job must have run, none dead.
fn report_results(
    mut service: Service,
    keyed: bool,
) -> (BTreeMap<String, Counts>, BTreeMap<String, Counts>) {
    let started = Instant::now();
    let base = service.serve(keyed);
    for n in 1..=CONSUMERS {
        service.start_consumer(&format!("consumer{n}"));
    }

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let base = base.clone();
            std::thread::spawn(move || send_results(&base, client))
        })
        .collect();
    let mut sent: BTreeMap<String, Counts> = BTreeMap::new();
    for client in clients {
        for (ci_job, counts) in client.join().unwrap() {
            let total = sent.entry(ci_job).or_default();
            for (sum, n) in total.iter_mut().zip(counts) {
                *sum += n;
            }
        }
    }
    let results = (CI_JOBS * TEST_CASES_PER_JOB) as u64;
    let sending = started.elapsed();
    assert_eq!(sent.values().flatten().sum::<i64>(), results as i64);

    let (done, dead) = service.wait_for_jobs(results);
    eprintln!(
        "{} results sent in {:.1} s, all run after {:.1} s",
        results,
        sending.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        (done, dead),
        (results, 0),
        "every job ran once and none failed for good"
    );
    service.stop_consumers();
    service.stop_server();
    (sent, service.report())
}

/// One client: reports a fifth of every CI job's test cases (those whose
/// number is `client` modulo 5), a CI job at a time. Clients 0 and 1 go
/// through the CI jobs side by side from the first one, 2 and 3 from a third
/// of the way, 4 alone from two thirds: three CI jobs' results arrive at
/// once, each CI job's from two clients at the same moment, as in seed 000.
fn send_results(base: &str, client: usize) -> BTreeMap<String, Counts> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut sent: BTreeMap<String, Counts> = BTreeMap::new();
    for step in 0..CI_JOBS {
        let job = (client / 2 * CI_JOBS / 3 + step) % CI_JOBS;
        let ci_job = format!("ci-{job:02}");
        for test_case in (client..TEST_CASES_PER_JOB).step_by(CLIENTS) {
            let (outcome, index) = outcome(job, test_case);
            let body = format!(r#"{{"test_case": "test_{test_case:03}", "outcome": "{outcome}"}}"#);
            let mut response = agent
                .post(&format!("{base}/ci-jobs/{ci_job}/results"))
                .header("content-type", "application/json")
                .send(&body)
                .unwrap();
            let status = response.status().as_u16();
            let answer = response.body_mut().read_to_string().unwrap();
            assert_eq!(status, 202, "{ci_job} {body}: {answer}");
            sent.entry(ci_job.clone()).or_default()[index] += 1;
        }
    }
    sent
}

/// A test case's outcome, varied so that no two CI jobs count alike:
/// `(name, index in Counts)`.
fn outcome(job: usize, test_case: usize) -> (&'static str, usize) {
    if test_case.is_multiple_of(job % 7 + 4) {
        ("failed", 1)
    } else if test_case % 13 == job % 13 {
        ("skipped", 2)
    } else {
        ("passed", 0)
    }
}

/// The CI jobs whose record does not count exactly the results sent for it,
/// with what was sent and what was recorded.
fn miscounted(
    sent: &BTreeMap<String, Counts>,
    recorded: &BTreeMap<String, Counts>,
) -> Vec<(String, Counts, Option<Counts>)> {
    let mut wrong: Vec<_> = sent
        .iter()
        .filter(|(ci_job, counts)| recorded.get(*ci_job) != Some(counts))
        .map(|(ci_job, counts)| (ci_job.clone(), *counts, recorded.get(ci_job).copied()))
        .collect();
    wrong.extend(
        recorded
            .iter()
            .filter(|(ci_job, _)| !sent.contains_key(*ci_job))
            .map(|(ci_job, counts)| (ci_job.clone(), [0; 3], Some(*counts))),
    );
    wrong
}

/// With the CI job id as ordering key, no update is lost.
fn keyed_every_record_counts_exactly_its_own_results(service: Service) {
    let (sent, recorded) = report_results(service, true);
    assert_eq!(sent.len(), CI_JOBS);
    let wrong = miscounted(&sent, &recorded);
    assert!(
        wrong.is_empty(),
        "{} of {CI_JOBS} records miscounted (ci job, sent, recorded): {wrong:?}",
        wrong.len()
    );
}

/// The same scenario and the same check without the ordering key: updates
/// are lost, so the check above can fail and its pass is evidence.
fn unkeyed_loses_updates_which_proves_the_check_can_fail(service: Service) {
    let (sent, recorded) = report_results(service, false);
    let wrong = miscounted(&sent, &recorded);
    assert!(
        !wrong.is_empty(),
        "without the ordering key every record still counted exactly its results: \
         the check could not tell a lost update, so the keyed test proves nothing"
    );
    // Lost, not invented: every miscounted record is short, never over.
    for (ci_job, sent, recorded) in &wrong {
        let recorded = recorded.unwrap_or_default();
        assert!(
            recorded.iter().sum::<i64>() < sent.iter().sum::<i64>(),
            "{ci_job}: sent {sent:?}, recorded {recorded:?}"
        );
    }
    let lost: i64 = wrong
        .iter()
        .map(|(_, sent, recorded)| {
            sent.iter().sum::<i64>() - recorded.unwrap_or_default().iter().sum::<i64>()
        })
        .sum();
    eprintln!(
        "unkeyed, as expected: {} of {CI_JOBS} records short, {lost} of {} updates lost",
        wrong.len(),
        CI_JOBS * TEST_CASES_PER_JOB
    );
}

/// Runs each scenario on every backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod default_sqlite {
            $(#[test] fn $test() { if let Some(service) = super::Service::new(super::Backend::DefaultSqlite) { super::$test(service) } })*
        }
        mod redis {
            $(#[test] fn $test() { if let Some(service) = super::Service::new(super::Backend::Redis) { super::$test(service) } })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test] fn $test() { if let Some(service) = super::Service::new(super::Backend::Postgres) { super::$test(service) } })*
        }
    };
}

on_every_backend!(
    keyed_every_record_counts_exactly_its_own_results,
    unkeyed_loses_updates_which_proves_the_check_can_fail,
);

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
