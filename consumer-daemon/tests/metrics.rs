//! `run --metrics ADDR` of the real binary: the consumer serves its
//! Prometheus metrics, counting the jobs it ran and failed beside the
//! backend's counts, and refuses to start on an address it cannot bind.
#![cfg(feature = "dashboard")]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use outband::{BaseQueue, NewJob, codec};
use outband_testkit::{free_port, kill, poll_until};

const BIN: &str = env!("CARGO_BIN_EXE_outband-demo-consumer");

/// A consumer process, killed when the test ends however it ends.
struct Consumer(Child);

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(address: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(format!("http://{address}/metrics")).call().ok()?;
    (response.status() == 200).then(|| response.body_mut().read_to_string().ok())?
}

#[test]
fn a_consumer_serves_the_metrics_of_what_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let backend = outband_diesel::DatabaseQueue::open(&url).unwrap();
    let out = dir.path().join("out.txt").display().to_string();
    let record = |path: &str, tag: &str| {
        let args = codec::encode(&(path.to_owned(), tag.to_owned())).unwrap();
        backend
            .enqueue(NewJob::new("demo::record", args).queue("demo"))
            .unwrap()
    };
    for tag in ["a", "b", "c"] {
        record(&out, tag);
    }
    record("/nonexistent-outband-dir/out.txt", "never");

    let address = format!("127.0.0.1:{}", free_port());
    let pidfile = dir.path().join("consumer.pid");
    let child = Command::new(BIN)
        .args(["run", "--url", &url, "--metrics", &address, "-n", "-t", "2"])
        .arg("-p")
        .arg(&pidfile)
        .arg("-l")
        .arg(dir.path().join("consumer.log"))
        .env_remove("OUTBAND_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut consumer = Consumer(child);

    let mut text = String::new();
    poll_until(
        "the metrics count the jobs run",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            text = scrape(&address).unwrap_or_default();
            text.contains("outband_jobs_processed_total{command=\"demo::record\"} 3")
                && text.contains("outband_jobs_failed_total{command=\"demo::record\"} ")
        },
    );
    for line in [
        "outband_jobs{queue=\"demo\",state=\"done\"} 3",
        "outband_job_run_seconds_count{command=\"demo::record\"}",
        "outband_claim_seconds_count{queue=\"demo\"}",
        "outband_consumers_alive 1",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }

    kill("-TERM", consumer.0.id());
    let ended = consumer.0.wait().unwrap();
    assert!(ended.success(), "{ended:?}");
}

#[test]
fn an_address_it_cannot_bind_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["run", "--url", &url, "--metrics", &address, "-n"])
        .env_remove("OUTBAND_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains(&format!("--metrics {address}")), "{said}");
}
