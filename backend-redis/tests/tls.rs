//! `rediss://` (feature `tls`), sync and awaited, with a cancel feed and an
//! awaited wait for a job's end on connections of their own: a private
//! `redis-server` with a TLS port and a certificate from a CA the test makes
//! with `openssl`.

#![cfg(feature = "tls")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outband::test_suite::echo;
use outband::{AsyncEnqueue, BaseQueue, Cancellation, JobState, NewJob};
use outband_redis::{RedisOptions, RedisQueue};
use outband_testkit::{PrivateRedis, free_port, have_program};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?} failed");
}

#[test]
fn rediss_urls_connect_over_tls() {
    if !have_program("redis-server") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("outband-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=outband test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "san.cnf",
        ],
    );
    let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_owned();
    let tls_port = free_port().to_string();
    let Some(server) = PrivateRedis::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &path("server.crt"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-ca-cert-file",
        &path("ca.crt"),
        "--tls-auth-clients",
        "no",
        "--appendonly",
        "no",
    ]) else {
        return;
    };

    let ca = std::fs::read(dir.join("ca.crt")).expect("ca.crt");
    let url = format!("rediss://127.0.0.1:{tls_port}/?namespace=tls-test");
    let backend = RedisQueue::with_options(&url, RedisOptions::default().tls_root_certificate(ca))
        .expect("url");
    let job = NewJob::new(
        echo::NAME,
        outband::codec::encode(&(5u64,)).expect("encodes"),
    )
    .queue("tls");
    let id = backend.enqueue(job.clone()).expect("enqueue over TLS");
    assert_eq!(
        backend.job(id).expect("job").map(|j| j.state),
        Some(JobState::Pending)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let awaited = runtime
        .block_on(backend.enqueue_many_async(vec![job.clone()]))
        .expect("awaited enqueue over TLS");
    assert_eq!(
        backend.job(awaited[0]).expect("job").map(|j| j.state),
        Some(JobState::Pending)
    );

    let mut feed = backend
        .cancel_feed()
        .expect("a cancel feed over TLS")
        .expect("Redis pushes cancels");
    let claimed = backend
        .claim("tls", 1, Duration::from_secs(60))
        .expect("claim");
    assert_eq!(claimed[0].job.id, id);
    assert_eq!(
        backend.cancel(id, "stop").expect("cancel"),
        Cancellation::Requested
    );
    assert_eq!(feed.next(Duration::from_secs(10)).expect("next"), vec![id]);
    let took = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            backend.cancel(awaited[0], "not wanted").expect("cancel");
        });
        let start = Instant::now();
        let wait = backend
            .wait_finished_async(awaited[0], Duration::from_secs(60))
            .expect("an awaited wait");
        runtime.block_on(wait).expect("an awaited wait over TLS");
        start.elapsed()
    });
    assert!(took < Duration::from_secs(30), "woken after {took:?}");

    // a server whose certificate no trusted root signed is refused
    let untrusted = RedisQueue::connect(&url).expect("url");
    assert!(untrusted.now().is_err(), "the test CA is not a system root");
    // a fresh handle, so the refusal is the TLS handshake's, not the backoff's
    let untrusted = RedisQueue::connect(&url).expect("url");
    let refused = runtime.block_on(untrusted.enqueue_many_async(vec![job]));
    let error = refused.expect_err("nor on the awaited path");
    assert!(!error.to_string().contains("reconnecting after"), "{error}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
