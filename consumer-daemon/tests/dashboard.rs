//! The `dashboard` command of the real binary: it serves the pages of its
//! backend over HTTP, and refuses an address other hosts can reach without
//! a token.
#![cfg(feature = "dashboard")]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

use outband::{BaseQueue, NewJob, codec};
use outband_testkit::kill;

const BIN: &str = env!("CARGO_BIN_EXE_outband-demo-consumer");

/// A dashboard process, killed when the test ends however it ends.
struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(url: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["dashboard", "--bind", "127.0.0.1:0", "--url", url])
            .args(extra)
            .env_remove("OUTBAND_URL")
            .env_remove("OUTBAND_DASHBOARD_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr: ChildStderr = child.stderr.take().unwrap();
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("dashboard on ")
            .unwrap_or_else(|| panic!("the dashboard did not say where it listens: {line:?}"))
            .trim_end_matches(", read-only")
            .to_owned();
        Served { child, base }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(url: &str) -> (u16, String) {
    let mut response = agent().get(url).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[test]
fn the_dashboard_serves_the_overview_of_its_backend() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let backend = outband_diesel::DatabaseQueue::open(&url).unwrap();
    let args = codec::encode(&("/nowhere".to_owned(), "seen-on-the-page".to_owned())).unwrap();
    let id = backend
        .enqueue(NewJob::new("demo::record", args).queue("demo"))
        .unwrap();
    backend
        .enqueue(NewJob::new("demo::record", codec::encode(&("a", "b")).unwrap()).queue("demo"))
        .unwrap();

    let mut served = Served::start(&url, &[]);
    let (status, overview) = get(&served.base);
    assert_eq!(status, 200, "{overview}");
    assert!(
        overview.contains("data-queue=\"demo\" data-state=\"pending\"><a href=\"/jobs?queue=demo&amp;state=pending\">2</a>"),
        "{overview}"
    );
    // the arguments shown through the binary's own command
    let (status, job) = get(&format!("{}jobs/{id}", served.base));
    assert_eq!(status, 200);
    assert!(job.contains("seen-on-the-page"), "{job}");

    // SIGTERM stops it cleanly
    kill("-TERM", served.child.id());
    let ended = served.child.wait().unwrap();
    assert!(ended.success(), "{ended:?}");
}

#[test]
fn a_token_is_required_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let served = Served::start(&url, &["--token", "s3cret", "--read-only"]);
    assert_eq!(get(&served.base).0, 401);
    let mut bearer = agent()
        .get(&served.base)
        .header("Authorization", "Bearer s3cret")
        .call()
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let page = bearer.body_mut().read_to_string().unwrap();
    assert!(page.contains("read-only"), "{page}");
    let login = agent()
        .get(&format!("{}?token=s3cret", served.base))
        .call()
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.headers().contains_key("set-cookie"));
}

#[test]
fn an_address_other_hosts_reach_is_refused_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let out = Command::new(BIN)
        .args(["dashboard", "--bind", "0.0.0.0:0", "--url", &url])
        .env_remove("OUTBAND_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("refusing to serve the dashboard on 0.0.0.0")
            && said.contains("--token")
            && said.contains("--insecure"),
        "{said}"
    );
    let out = Command::new(BIN)
        .args([
            "dashboard",
            "--bind",
            "0.0.0.0:0",
            "--insecure",
            "--token",
            "t",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--insecure and --token conflict"
    );
}
