//! The web app and its consumer as real processes: the `web-app` binary runs
//! `serve` on a free port and the consumer beside it, and the test itself
//! runs the webhook receiver the async `churn_data` posts to, on loopback.
//! Each test posts 1,000 `churn` requests and 100 `index` requests from
//! several client threads at once and checks that every job ran exactly
//! once: every record delivered to the receiver once with its own results,
//! every document's line in `indexed.txt` once, every job `done` at its
//! first attempt.
//!
//! Every test runs on three backends: SQLite with `OUTBAND_URL` unset (the
//! default `outband.db` in the test's directory), the Redis at `REDIS_URL` in
//! a namespace of its own, and the PostgreSQL at `PG_DATABASE_URL` with a
//! table prefix of its own. The last two are skipped with a notice when their
//! server is unreachable, unless `OUTBAND_REQUIRE_SERVERS=1`.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use outband::BaseQueue;
use outband_testkit::{
    free_port, kill, kill_daemons, redis_url, skip_or_fail, unique_name, wait_until, with_param,
};
use serde::Deserialize;

const BIN: &str = env!("CARGO_BIN_EXE_web-app");

/// `churn` requests each test posts, one per record.
const REQUESTS: u64 = 1_000;

/// Every how many records an `index` request is posted too.
const INDEX_EVERY: u64 = 10;

/// Client threads posting them, all at once.
const CLIENTS: u64 = 8;

/// The backends the app is tested on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// `OUTBAND_URL` unset: `sqlite://outband.db` in the working directory.
    SqliteDefault,
    Redis,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// How long a wait for the jobs may take before the test fails.
const WAIT: Duration = Duration::from_secs(120);

/// What `churn_data` posts to the webhook.
#[derive(Clone, Debug, Deserialize, PartialEq)]
struct Delivery {
    record: u64,
    another_value: i64,
    words: u64,
    checksum: String,
}

/// The webhook receiver: an axum server in this process, on loopback, that
/// keeps every delivery it is posted. Dropping it shuts it down.
struct Receiver {
    url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        use axum::extract::{Json, State};
        use axum::http::StatusCode;

        async fn receive(
            State(deliveries): State<Arc<Mutex<Vec<Delivery>>>>,
            Json(delivery): Json<Delivery>,
        ) -> StatusCode {
            deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(delivery);
            StatusCode::NO_CONTENT
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/churned", listener.local_addr().unwrap());
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/churned", axum::routing::post(receive))
            .with_state(Arc::clone(&deliveries));
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            deliveries,
            _runtime: runtime,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self) -> usize {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The server running `serve`, and the pipe its lines come through.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

/// One test's directory, backend and processes; kills what it started and
/// removes what it left on a shared server.
struct World {
    dir: tempfile::TempDir,
    receiver: Receiver,
    /// Whether the processes get `CHURN_WEBHOOK`, the receiver's URL.
    webhook: bool,
    /// `None`: the processes run with `OUTBAND_URL` unset.
    url: Option<String>,
    /// Keeps the PostgreSQL tables until the end (they are temporary).
    _queue: Option<Arc<dyn BaseQueue>>,
    redis_namespace: Option<String>,
    server: Option<Server>,
    consumer: Option<Child>,
    daemon_pidfiles: Vec<PathBuf>,
}

impl World {
    /// A fresh world, or `None` (with a notice) when its server is missing
    /// and not required.
    fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut world = World {
            dir,
            receiver: Receiver::start(),
            webhook: true,
            url: None,
            _queue: None,
            redis_namespace: None,
            server: None,
            consumer: None,
            daemon_pidfiles: Vec::new(),
        };
        match backend {
            Backend::SqliteDefault => {}
            Backend::Redis => {
                let base = redis_url();
                let namespace = unique_name("waredis");
                let url = with_param(&base, "namespace", &namespace);
                let backend = outband_redis::RedisQueue::connect(&url).unwrap();
                if let Err(error) = backend.now() {
                    return skip_or_fail(&format!("Redis at {base}"), &error);
                }
                world.url = Some(url);
                world.redis_namespace = Some(namespace);
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let base = outband_testkit::pg_url();
                let prefix = format!("{}_", unique_name("wapg"));
                let opened = outband_diesel::DatabaseQueue::builder(base.clone())
                    .prefix(prefix.clone())
                    .temporary(true)
                    .open();
                let queue = match opened {
                    Ok(queue) => queue,
                    Err(error @ outband::Error::Unavailable(_)) => {
                        return skip_or_fail(&base, &error);
                    }
                    Err(error) => panic!("cannot open {base}: {error}"),
                };
                world.url = Some(with_param(&base, "prefix", &prefix));
                world._queue = Some(Arc::new(queue));
            }
        }
        Some(world)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with `args`, in the world's directory, on its backend:
    /// `OUTBAND_URL` set to the world's URL, or unset for the SQLite default;
    /// `CHURN_WEBHOOK` set to the receiver, and no proxy between the two.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("OUTBAND_URL")
            .env_remove("CHURN_WEBHOOK")
            .env_remove("INDEX_RESULTS")
            .env_remove("WEB_APP_BIND");
        for proxy in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            command.env_remove(proxy);
        }
        if let Some(url) = &self.url {
            command.env("OUTBAND_URL", url);
        }
        if self.webhook {
            command.env("CHURN_WEBHOOK", &self.receiver.url);
        }
        command
    }

    /// Runs a short command of the binary to its end.
    fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `serve` on a free port and waits for the line that names it.
    fn serve(&mut self) -> SocketAddr {
        let mut child = self
            .command(&["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("web-app listening on http://")
            .unwrap_or_else(|| panic!("serve printed {line:?}"))
            .parse()
            .unwrap();
        self.server = Some(Server { child, stdout });
        addr
    }

    /// SIGTERMs `serve`, which must then exit 0 after saying it stopped.
    fn stop_server(&mut self) {
        let mut server = self.server.take().expect("a server runs");
        kill("-TERM", server.child.id());
        let status = wait_for_exit(&mut server.child);
        let mut rest = String::new();
        server.stdout.read_to_string(&mut rest).unwrap();
        assert!(status.success(), "serve ended with {status}");
        assert!(rest.contains("web-app stopped"), "{rest}");
    }

    /// `start -p NAME.pid -l NAME.log`, with a short poll wait; panics
    /// unless it started.
    fn start_daemon(&mut self, name: &str) {
        let pidfile = self.path(&format!("{name}.pid"));
        let logfile = self.path(&format!("{name}.log"));
        let out = self.cli(&[
            "start",
            "-p",
            &pidfile.display().to_string(),
            "-l",
            &logfile.display().to_string(),
            "-d",
            "0.05",
            "-m",
            "0.2",
        ]);
        assert!(
            out.status.success(),
            "start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.daemon_pidfiles.push(pidfile);
    }

    /// `status -p NAME.pid`: its exit code and what it printed.
    fn daemon_status(&self, name: &str) -> (i32, String) {
        let pidfile = self.path(&format!("{name}.pid"));
        let out = self.cli(&["status", "-p", &pidfile.display().to_string()]);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The lines `index_words` appended, parsed: document → every
    /// `(words, distinct, most_frequent)` recorded for it.
    fn indexed(&self) -> BTreeMap<u64, Vec<(u64, u64, String)>> {
        let text = std::fs::read_to_string(self.path("indexed.txt")).unwrap_or_default();
        let mut runs: BTreeMap<u64, Vec<(u64, u64, String)>> = BTreeMap::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "a whole line: {line:?}");
            runs.entry(fields[0].parse().unwrap()).or_default().push((
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
                fields[3].to_owned(),
            ));
        }
        runs
    }

    fn indexed_lines(&self) -> usize {
        std::fs::read_to_string(self.path("indexed.txt"))
            .map(|text| text.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        if let Some(consumer) = &mut self.consumer {
            let _ = consumer.kill();
            let _ = consumer.wait();
        }
        kill_daemons(&self.daemon_pidfiles);
        if let (Some(namespace), Some(url)) = (&self.redis_namespace, &self.url)
            && let Ok(queue) = outband_redis::RedisQueue::connect(url)
        {
            let _ = outband_redis::delete_namespace(&queue, namespace);
        }
    }
}

/// Runs each test on every backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite_default {
            $(#[test] fn $test() { if let Some(world) = super::World::new(super::Backend::SqliteDefault) { super::$test(world) } })*
        }
        mod redis {
            $(#[test] fn $test() { if let Some(world) = super::World::new(super::Backend::Redis) { super::$test(world) } })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test] fn $test() { if let Some(world) = super::World::new(super::Backend::Postgres) { super::$test(world) } })*
        }
    };
}

on_every_backend!(
    a_thousand_posts_then_a_daemon_runs_each_job_exactly_once,
    a_thousand_posts_while_a_foreground_consumer_runs_them,
);

/// `POST /churn/…`'s answer.
#[derive(Debug, Deserialize)]
struct Accepted {
    job: u64,
}

/// `GET /jobs/{id}`'s answer.
#[derive(Debug, Deserialize)]
struct JobStatus {
    id: u64,
    command: String,
    state: String,
    attempt: u32,
    last_error: Option<String>,
}

/// The `another_val` posted with record `n`: negative for odd records, so
/// that both signs travel.
fn another_val(record: u64) -> i64 {
    let value = i64::try_from(record).unwrap() * 3;
    if record % 2 == 1 { -value } else { value }
}

/// What the client posts for `record`: three words.
fn payload(record: u64) -> String {
    format!("churn record {record}")
}

/// The checksum `churn_data` reports for `data`, worked out here.
fn checksum(data: &str) -> String {
    let sum = data.bytes().fold(0u64, |sum, byte| {
        sum.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    format!("{sum:016x}")
}

/// What the client posts to index `document`: six words, four distinct,
/// "record" and "the" twice each, so the tie goes to "record".
fn text(document: u64) -> String {
    format!("The record {document}, and the record.")
}

/// The job ids the posts were answered with.
#[derive(Debug, Default)]
struct Posted {
    /// Record → the job of its `churn_data`.
    churned: BTreeMap<u64, u64>,
    /// Document → the job of its `index_words`.
    indexed: BTreeMap<u64, u64>,
}

/// Posts, from `CLIENTS` threads at once, `churn` for every record in
/// `0..REQUESTS` and `index` for every `INDEX_EVERY`th; checks each answer
/// and returns the job ids.
fn post_all(addr: SocketAddr) -> Posted {
    // All clients start together, so that the handlers' enqueues overlap.
    let start = Arc::new(std::sync::Barrier::new(CLIENTS as usize));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let agent = agent();
                let mut posted = Posted::default();
                start.wait();
                for record in (client..REQUESTS).step_by(CLIENTS as usize) {
                    let url = format!("http://{addr}/churn/{record}/{}", another_val(record));
                    let job = post_form(&agent, &url, "payload", &payload(record));
                    posted.churned.insert(record, job);
                    if record % INDEX_EVERY == 0 {
                        let url = format!("http://{addr}/index/{record}");
                        let job = post_form(&agent, &url, "text", &text(record));
                        posted.indexed.insert(record, job);
                    }
                }
                posted
            })
        })
        .collect();
    let mut posted = Posted::default();
    for thread in threads {
        let part = thread.join().unwrap();
        posted.churned.extend(part.churned);
        posted.indexed.extend(part.indexed);
    }
    assert_eq!(
        posted.churned.len() as u64,
        REQUESTS,
        "one answer per churn"
    );
    assert_eq!(
        posted.indexed.len() as u64,
        REQUESTS / INDEX_EVERY,
        "one answer per index"
    );
    let distinct: HashSet<u64> = posted
        .churned
        .values()
        .chain(posted.indexed.values())
        .copied()
        .collect();
    assert_eq!(
        distinct.len(),
        posted.churned.len() + posted.indexed.len(),
        "one job id per request"
    );
    posted
}

/// Posts a form of one field; checks the `202` and its `Location`, and
/// returns the job id.
fn post_form(agent: &ureq::Agent, url: &str, field: &str, value: &str) -> u64 {
    let mut response = agent
        .post(url)
        .send_form([(field, value)])
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(response.status(), 202, "POST {url}");
    let location = response.headers().get("location").cloned();
    let accepted: Accepted = response.body_mut().read_json().unwrap();
    assert_eq!(
        location.as_ref().and_then(|l| l.to_str().ok()),
        Some(format!("/jobs/{}", accepted.job).as_str()),
        "the job's status is where Location says"
    );
    accepted.job
}

/// An HTTP client for the app on loopback, deaf to any proxy settings of
/// the environment.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().proxy(None).build().into()
}

/// `GET /jobs/{id}`.
fn job_status(agent: &ureq::Agent, addr: SocketAddr, id: u64) -> JobStatus {
    agent
        .get(format!("http://{addr}/jobs/{id}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

/// Waits until every job is done, then checks that each ran exactly once,
/// with the arguments it was posted with, at its first attempt: every
/// record's results reached the webhook once, every document's line is in
/// `indexed.txt` once.
fn assert_each_job_ran_exactly_once(world: &World, addr: SocketAddr, posted: &Posted) {
    wait_until("every delivery arrived", WAIT, || {
        world.receiver.count() >= posted.churned.len()
    });
    wait_until("every document was indexed", WAIT, || {
        world.indexed_lines() >= posted.indexed.len()
    });
    let agent = agent();
    let jobs = posted
        .churned
        .iter()
        .map(|(record, id)| (record, id, "web_app::commands::churn_data"))
        .chain(
            posted
                .indexed
                .iter()
                .map(|(document, id)| (document, id, "web_app::commands::index_words")),
        );
    for (record, &id, command) in jobs {
        wait_until("the job is recorded done", WAIT, || {
            job_status(&agent, addr, id).state != "running"
        });
        let status = job_status(&agent, addr, id);
        assert_eq!(status.id, id);
        assert_eq!(status.command, command);
        assert_eq!(
            (status.state.as_str(), status.attempt, status.last_error),
            ("done", 1, None),
            "{command} of {record}, job {id}"
        );
    }

    let mut delivered: BTreeMap<u64, Vec<Delivery>> = BTreeMap::new();
    for delivery in world.receiver.deliveries() {
        delivered.entry(delivery.record).or_default().push(delivery);
    }
    for record in posted.churned.keys() {
        let expected = Delivery {
            record: *record,
            another_value: another_val(*record),
            words: 3,
            checksum: checksum(&payload(*record)),
        };
        assert_eq!(
            delivered.remove(record),
            Some(vec![expected]),
            "record {record} delivered once, with its own results"
        );
    }
    assert!(delivered.is_empty(), "never posted: {delivered:?}");

    let indexed = world.indexed();
    for document in posted.indexed.keys() {
        assert_eq!(
            indexed.get(document),
            Some(&vec![(6, 4, "record".to_owned())]),
            "document {document} indexed once"
        );
    }
    assert_eq!(
        world.indexed_lines(),
        posted.indexed.len(),
        "no document indexed twice, none that was not posted"
    );
}

/// The handlers only enqueue: with no consumer running, all the posts are
/// answered and nothing has run. Then `start` runs them as a daemon, `status`
/// sees it, and `stop` ends it and removes its pid file.
fn a_thousand_posts_then_a_daemon_runs_each_job_exactly_once(mut world: World) {
    let addr = world.serve();
    let posted = post_all(addr);

    let agent = agent();
    for &id in posted.churned.values().chain(posted.indexed.values()) {
        let status = job_status(&agent, addr, id);
        assert_eq!((status.state.as_str(), status.attempt), ("pending", 0));
    }
    assert_eq!(
        world.receiver.count(),
        0,
        "nothing delivered before a consumer"
    );
    assert!(
        !world.path("indexed.txt").exists(),
        "nothing indexed before a consumer started"
    );
    let unknown = agent.get(format!("http://{addr}/jobs/{}", u64::MAX)).call();
    assert!(
        matches!(unknown, Err(ureq::Error::StatusCode(404))),
        "{unknown:?}"
    );

    assert_eq!(world.daemon_status("consumer").0, 3, "not running yet");
    world.start_daemon("consumer");
    let (code, said) = world.daemon_status("consumer");
    assert_eq!(code, 0, "running: {said}");
    assert!(said.contains("running, pid"), "{said}");

    assert_each_job_ran_exactly_once(&world, addr, &posted);

    let pidfile = world.path("consumer.pid").display().to_string();
    let out = world.cli(&["stop", "-p", &pidfile]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("stopped"), "{said}");
    assert!(
        !world.path("consumer.pid").exists(),
        "the pid file is removed"
    );
    assert_eq!(world.daemon_status("consumer").0, 3, "not running");
    let log = std::fs::read_to_string(world.path("consumer.log")).unwrap();
    for command in ["churn_data", "index_words"] {
        assert!(
            log.contains(&format!("web_app::commands::{command} attempt 1/4 started")),
            "the daemon logs each job: {log}"
        );
    }

    world.stop_server();
    if world.url.is_none() {
        assert!(
            world.path("outband.db").exists(),
            "with OUTBAND_URL unset, the queue is ./outband.db"
        );
    }
}

/// The consumer runs in the foreground (`run`, as under systemd) while the
/// requests come in, and ends cleanly on SIGTERM.
fn a_thousand_posts_while_a_foreground_consumer_runs_them(mut world: World) {
    let consumer = world
        .command(&["run", "-d", "0.05", "-m", "0.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    world.consumer = Some(consumer);
    let addr = world.serve();
    let posted = post_all(addr);

    assert_each_job_ran_exactly_once(&world, addr, &posted);

    let mut consumer = world.consumer.take().unwrap();
    kill("-TERM", consumer.id());
    let status = wait_for_exit(&mut consumer);
    assert!(status.success(), "the consumer ended with {status}");
    world.stop_server();
}

/// A delivery that cannot be made fails the attempt and the job is retried,
/// saying why, until it is dead: here the consumer has no `CHURN_WEBHOOK`.
/// Nothing reaches the receiver, and the sync command beside it runs.
#[test]
fn a_churn_without_a_webhook_fails_every_attempt_and_says_why() {
    let mut world = World::new(Backend::SqliteDefault).expect("SQLite needs no server");
    world.webhook = false;
    let addr = world.serve();
    let agent = agent();
    let churn = post_form(
        &agent,
        &format!("http://{addr}/churn/1/2"),
        "payload",
        "some data",
    );
    let index = post_form(&agent, &format!("http://{addr}/index/1"), "text", "a b a");
    world.start_daemon("consumer");

    // Every attempt fails the same way, so the job ends dead after its last.
    wait_until("the job is dead", WAIT, || {
        job_status(&agent, addr, churn).state == "dead"
    });
    let status = job_status(&agent, addr, churn);
    assert_eq!(status.attempt, 4, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("CHURN_WEBHOOK is not set")),
        "{status:?}"
    );
    wait_until("the document was indexed", WAIT, || {
        job_status(&agent, addr, index).state == "done"
    });
    assert_eq!(world.indexed().get(&1), Some(&vec![(3, 2, "a".to_owned())]));
    assert_eq!(world.receiver.count(), 0);
    world.stop_server();
}

/// Requests the handler cannot take are refused with a 4xx and queue
/// nothing; a backend that cannot be reached is a 503, and the server lives on.
#[test]
fn bad_requests_and_an_unreachable_backend_are_answered_plainly() {
    let mut world = World::new(Backend::SqliteDefault).expect("SQLite needs no server");
    let addr = world.serve();
    let agent = agent();
    let refused = |response: Result<ureq::http::Response<ureq::Body>, ureq::Error>| match response {
        Err(ureq::Error::StatusCode(code)) => code,
        other => panic!("expected an error status, got {other:?}"),
    };
    let url = format!("http://{addr}/churn/1/2");
    assert_eq!(refused(agent.post(&url).send_empty()), 415, "no form");
    assert_eq!(
        refused(agent.post(&url).send_form([("other", "x")])),
        422,
        "no payload field"
    );
    let index = format!("http://{addr}/index/1");
    assert_eq!(
        refused(agent.post(&index).send_form([("payload", "x")])),
        422,
        "no text field"
    );
    let not_a_number = format!("http://{addr}/churn/one/2");
    assert_eq!(
        refused(agent.post(&not_a_number).send_form([("payload", "x")])),
        400
    );
    assert_eq!(
        refused(agent.get(format!("http://{addr}/jobs/1")).call()),
        404,
        "nothing was queued"
    );
    world.stop_server();

    // A port nothing listens on: taken from the system, then let go.
    let port = free_port();
    world.url = Some(format!("redis://127.0.0.1:{port}/"));
    let addr = world.serve();
    let url = format!("http://{addr}/churn/1/2");
    let index = format!("http://{addr}/index/1");
    for _ in 0..2 {
        assert_eq!(
            refused(agent.post(&url).send_form([("payload", "x")])),
            503,
            "the backend is unreachable: try again later"
        );
        assert_eq!(
            refused(agent.post(&index).send_form([("text", "x")])),
            503,
            "the same for the sync command"
        );
    }
    world.stop_server();
}

/// One binary, both sides: `serve` and the consumer's commands, and the
/// consumer knows both commands.
#[test]
fn the_binary_offers_serve_and_every_consumer_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env_remove("OUTBAND_URL")
            .output()
            .unwrap()
    };
    let help = run(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for command in [
        "serve", "run", "start", "stop", "status", "restart", "quiet", "commands", "stats", "dead",
        "flush",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "{command} is missing from --help:\n{help}"
        );
    }
    let bare = run(&[]);
    assert_eq!(
        bare.status.code(),
        Some(2),
        "no arguments: help, not a consumer"
    );
    assert!(String::from_utf8_lossy(&bare.stderr).contains("Usage: web-app"));
    assert!(
        !dir.path().join("outband.db").exists(),
        "nothing opened the queue"
    );

    let serve_help = run(&["serve", "--help"]);
    assert!(String::from_utf8_lossy(&serve_help.stdout).contains("--bind"));

    let commands = run(&["commands"]);
    let listed = String::from_utf8_lossy(&commands.stdout);
    assert!(commands.status.success(), "{listed}");
    assert!(
        listed.contains("web_app::commands::churn_data")
            && listed.contains("web_app::commands::index_words")
            && listed.contains("churn"),
        "{listed}"
    );

    let bad = run(&["serve", "--bind", "not-an-address"]);
    assert_eq!(bad.status.code(), Some(2), "clap refuses a bad --bind");
}

/// Waits for a child to exit; kills it and fails after a generous time.
fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pid {} did not exit within 60 s", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
