//! The cancel feed ([`BaseQueue::cancel_feed`]) where the conformance suite
//! does not reach: a feed goes on through reads that find nothing, holds
//! what is published between two reads, receives only the first request
//! for a running job of its own namespace, reports a lost connection as
//! unavailable, and lets a processor stop a job long before its heartbeat.

mod support;

use std::time::{Duration, Instant};

use outband::test_suite::echo;
use outband::{
    BaseQueue, CancelFeed, Cancellation, Error, JobContext, JobId, JobState, MultiProcessor,
    NewJob, ProcessorConfig, queue_command,
};
use outband_redis::{RedisOptions, RedisQueue};
use outband_testkit::{PrivateRedis, wait_until};

const LEASE: Duration = Duration::from_secs(60);

fn echo_job(queue: &str, value: u64) -> NewJob {
    NewJob::new(
        echo::NAME,
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue(queue)
}

fn feed_of(backend: &RedisQueue) -> Box<dyn CancelFeed> {
    backend
        .cancel_feed()
        .expect("cancel_feed")
        .expect("Redis pushes cancels")
}

/// Reads `feed` until it gave `count` ids or a minute passed.
fn read(feed: &mut dyn CancelFeed, count: usize) -> Vec<JobId> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ids = Vec::new();
    while ids.len() < count && Instant::now() < deadline {
        ids.extend(feed.next(Duration::from_secs(5)).expect("next"));
    }
    ids
}

#[test]
fn a_feed_goes_on_through_empty_reads_and_holds_what_comes_between_them() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let mut feed = feed_of(backend);
    for _ in 0..3 {
        let start = Instant::now();
        let ids = feed.next(Duration::from_millis(100)).expect("next");
        assert!(ids.is_empty(), "nothing was cancelled: {ids:?}");
        assert!(start.elapsed() >= Duration::from_millis(90), "it waited");
    }

    let ids = backend
        .enqueue_many((0..4).map(|i| echo_job("feed", i)).collect())
        .unwrap();
    assert_eq!(backend.claim("feed", 3, LEASE).unwrap().len(), 3);
    for &id in &ids[..3] {
        assert_eq!(backend.cancel(id, "stop").unwrap(), Cancellation::Requested);
    }
    // a second request for a running job, and a pending job's cancel
    assert_eq!(
        backend.cancel(ids[0], "again").unwrap(),
        Cancellation::Requested
    );
    assert_eq!(
        backend.cancel(ids[3], "not yet run").unwrap(),
        Cancellation::Cancelled
    );
    // published while no read waits: held for the next one
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let mut received = read(&mut *feed, 3);
    assert!(start.elapsed() < Duration::from_secs(5), "they were held");
    received.sort_unstable();
    assert_eq!(received, ids[..3].to_vec());
    let more = feed.next(Duration::from_millis(300)).expect("next");
    assert!(more.is_empty(), "each running job once: {more:?}");
}

#[test]
fn a_feed_receives_only_its_namespaces_cancels() {
    let (Some(mine), Some(other)) = (
        support::test_queue(RedisOptions::default()),
        support::test_queue(RedisOptions::default()),
    ) else {
        return;
    };
    let mut feed = feed_of(&mine.backend);
    let theirs = other.backend.enqueue(echo_job("feed", 1)).unwrap();
    assert_eq!(other.backend.claim("feed", 1, LEASE).unwrap().len(), 1);
    other.backend.cancel(theirs, "theirs").unwrap();
    let ours = mine.backend.enqueue(echo_job("feed", 2)).unwrap();
    assert_eq!(mine.backend.claim("feed", 1, LEASE).unwrap().len(), 1);
    mine.backend.cancel(ours, "ours").unwrap();
    assert_eq!(read(&mut *feed, 1), vec![ours]);
    let more = feed.next(Duration::from_millis(300)).expect("next");
    assert!(more.is_empty(), "{more:?}");
}

/// A feed whose server went away fails, as unavailable; a new one opens
/// once the server is back.
#[test]
fn a_lost_connection_is_an_error_and_a_new_feed_opens_later() {
    let Some(mut server) = PrivateRedis::start(&["--appendonly", "no"]) else {
        return;
    };
    let backend = RedisQueue::connect(&server.url()).expect("url");
    let mut feed = feed_of(&backend);
    assert!(feed.next(Duration::from_millis(50)).unwrap().is_empty());
    server.kill();
    let error = (0..20)
        .find_map(|_| feed.next(Duration::from_millis(500)).err())
        .expect("the feed fails once its server is gone");
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    let refused = backend.cancel_feed().err().expect("no server to subscribe");
    assert!(refused.is_retryable(), "{refused:?}");

    server.restart();
    let mut feed = None;
    wait_until("a feed opens again", Duration::from_secs(30), || {
        feed = backend.cancel_feed().ok().flatten();
        feed.is_some()
    });
    let mut feed = feed.expect("a feed");
    let id = backend.enqueue(echo_job("back", 1)).unwrap();
    assert_eq!(backend.claim("back", 1, LEASE).unwrap().len(), 1);
    backend.cancel(id, "stop").unwrap();
    assert_eq!(read(&mut *feed, 1), vec![id]);
}

/// Runs until its context is cancelled.
#[queue_command(queue = "feed-pushed", retries = 5)]
fn until_stopped(ctx: &JobContext) -> Result<(), String> {
    while !ctx.is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("stopped before the end".into())
}

/// With a ten-minute lease a processor heartbeats every hundred seconds;
/// the feed stops the job at once, and the test waits thirty.
#[test]
fn a_processor_stops_a_job_when_its_cancel_is_published() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = scoped.backend.clone();
    let id = until_stopped::enqueue_on(&*backend).unwrap();
    let config = ProcessorConfig::default()
        .queues(["feed-pushed"])
        .wait_time(Duration::from_millis(10))
        .lease(Duration::from_secs(600));
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    let state = || backend.job(id).unwrap().expect("the job").state;
    wait_until("the job runs", None, || state() == JobState::Running);
    assert_eq!(
        backend.cancel(id, "pushed").unwrap(),
        Cancellation::Requested
    );
    wait_until("the job is cancelled", Duration::from_secs(30), || {
        state() == JobState::Cancelled
    });
    processor.stop();
    let job = backend.job(id).unwrap().expect("the job");
    assert_eq!(job.last_error.as_deref(), Some("pushed"));
}
