//! A private `redis-server` with `appendonly yes` is killed (SIGKILL) and
//! started again in the middle of a run: no acknowledged enqueue is lost, an
//! enqueue while it is down fails at once, and the consumer goes on without
//! being restarted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outband::test_suite::echo;
use outband::{BaseQueue, JobId, JobState, MultiProcessor, NewJob, ProcessorConfig};
use outband_redis::{RedisOptions, RedisQueue};
use outband_testkit::PrivateRedis;

const QUEUE: &str = "restart";

fn job(value: u64) -> NewJob {
    NewJob::new(
        echo::NAME,
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue(QUEUE)
}

#[test]
fn no_acknowledged_enqueue_is_lost_across_a_restart() {
    let Some(mut server) = PrivateRedis::start(&["--appendonly", "yes"]) else {
        return;
    };
    let options = RedisOptions::default().namespace("restart-test");
    let backend = Arc::new(RedisQueue::with_options(&server.url(), options).expect("url"));

    let config = ProcessorConfig::default()
        .queues([QUEUE])
        .max_threads(4)
        .wait_time(Duration::from_millis(50))
        .lease(Duration::from_secs(2));
    let consumer = MultiProcessor::new(backend.clone(), config).expect("processor");
    consumer.start();

    let acknowledged = Mutex::new(Vec::<JobId>::new());
    let refused = Mutex::new(0u64);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // the manager: returns jobs whose completion was lost with the server
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let _ = backend.recover_expired();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // the producer: enqueues one job at a time and keeps what was acknowledged
        scope.spawn(|| {
            let mut value = 0;
            while !stop.load(Ordering::SeqCst) {
                match backend.enqueue(job(value)) {
                    Ok(id) => acknowledged.lock().unwrap().push(id),
                    Err(error) => {
                        assert!(error.is_retryable(), "{error}");
                        *refused.lock().unwrap() += 1;
                    }
                }
                value += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });

        let count = || acknowledged.lock().unwrap().len();
        while count() < 200 {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        // while the server is down an enqueue fails, at once, and stores nothing
        let down = backend.enqueue(job(u64::MAX));
        assert!(
            matches!(down, Err(outband::Error::Unavailable(_))),
            "{down:?}"
        );
        let before = count();
        std::thread::sleep(Duration::from_millis(300));
        server.restart();
        while count() < before + 200 {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert!(
        *refused.lock().unwrap() > 0,
        "the producer ran into the outage"
    );

    // every acknowledged job is still there and gets done by the same consumer
    let ids = acknowledged.into_inner().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        loop {
            match backend.job(*id) {
                Ok(Some(job)) if job.state == JobState::Done => break,
                Ok(None) => panic!("acknowledged job {id} was lost"),
                _ => {}
            }
            let _ = backend.recover_expired();
            assert!(Instant::now() < deadline, "job {id} never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    consumer.stop();
}
