//! `/metrics` of a process that enqueues and runs jobs: the counters and
//! histograms its processors and enqueues fed, beside the backend's counts.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use outband::{BaseQueue, MemoryQueue, MultiProcessor, ProcessorConfig, queue_command};
use outband_testkit::poll_until;
use tower::ServiceExt;

#[queue_command(name = "metrics_test::works", queue = "metered")]
fn works(millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
}

#[queue_command(name = "metrics_test::fails", queue = "metered", retries = 0)]
fn fails() -> Result<(), String> {
    Err("no luck".into())
}

async fn scrape(backend: Arc<dyn BaseQueue>) -> String {
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = outband_web::metrics::router(backend)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_this_process_ran_and_what_the_backend_holds() {
    let backend = Arc::new(MemoryQueue::new());
    // installed before the work, as a consumer does at its start
    outband_web::metrics::install();
    let setup = backend.clone();
    tokio::task::spawn_blocking(move || {
        works::enqueue_on(&*setup, 20).unwrap();
        works::enqueue_many_on(&*setup, [0, 0]).unwrap();
        fails::enqueue_on(&*setup).unwrap();
        // a queue no processor serves; stored through the backend itself,
        // not a generated enqueue, so not counted as one
        let args = outband::codec::encode(&(0_u64,)).unwrap();
        setup
            .enqueue(outband::NewJob::new(works::NAME, args).queue("metered-later"))
            .unwrap();
    })
    .await
    .unwrap();

    let config = ProcessorConfig::default()
        .queues(["metered"])
        .wait_time(Duration::from_millis(10))
        .max_threads(2);
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    let watched = backend.clone();
    tokio::task::spawn_blocking(move || {
        poll_until("the jobs ended", None, Duration::from_millis(5), || {
            let stats = watched.stats("metered").unwrap();
            stats.done == 3 && stats.dead == 1
        });
    })
    .await
    .unwrap();
    processor.stop();

    let text = scrape(backend).await;
    for line in [
        "outband_jobs_processed_total{command=\"metrics_test::works\"} 3",
        "outband_jobs_failed_total{command=\"metrics_test::fails\"} 1",
        "outband_job_run_seconds_count{command=\"metrics_test::works\"} 3",
        "outband_job_run_seconds_count{command=\"metrics_test::fails\"} 1",
        "outband_enqueue_seconds_count 3",
        "outband_jobs{queue=\"metered\",state=\"done\"} 3",
        "outband_jobs{queue=\"metered\",state=\"dead\"} 1",
        "outband_jobs{queue=\"metered-later\",state=\"pending\"} 1",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    let claims: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("outband_claim_seconds_count{queue=\"metered\"} "))
        .expect("claims were timed")
        .parse()
        .unwrap();
    assert!(claims >= 1, "{text}");
    assert!(
        !text.contains("outband_jobs_failed_total{command=\"metrics_test::works\"}"),
        "{text}"
    );
}
