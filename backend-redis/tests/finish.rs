//! Waits for a job's end ([`BaseQueue::wait_finished`], its awaited form
//! and [`JobHandle`](outband::JobHandle) over them) where the conformance
//! suite does not reach: several waiters on one job, ends by recovery and
//! by a flush, a dead job retried, an awaited result, and the keys a wait
//! leaves behind.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outband::test_suite::echo;
use outband::{
    AsyncEnqueue, BaseQueue, Completion, JobId, JobState, MultiProcessor, NewJob, Outcome,
    ProcessorConfig, queue_command,
};
use outband_redis::{RedisOptions, RedisQueue};

const LEASE: Duration = Duration::from_secs(60);
/// Longer than any waiter here should wait: one that returns well before
/// this was woken.
const LONG: Duration = Duration::from_secs(60);

fn echo_job(queue: &str, value: u64) -> NewJob {
    NewJob::new(
        echo::NAME,
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue(queue)
}

fn done() -> Outcome {
    Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    }
}

/// How long `wait_finished(id, LONG)` took in each of `waiters` threads
/// while `end` ended the job on this thread, after they had time to block.
fn woken_after(
    backend: &Arc<RedisQueue>,
    id: JobId,
    waiters: usize,
    end: impl FnOnce(),
) -> Vec<Duration> {
    std::thread::scope(|scope| {
        let waiting: Vec<_> = (0..waiters)
            .map(|_| {
                scope.spawn(|| {
                    let start = Instant::now();
                    backend.wait_finished(id, LONG).expect("wait_finished");
                    start.elapsed()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        end();
        waiting
            .into_iter()
            .map(|w| w.join().expect("a waiter"))
            .collect()
    })
}

fn assert_woken(what: &str, took: &[Duration]) {
    for took in took {
        assert!(
            *took < LONG / 4,
            "a waiter for a job that {what} returned after {took:?}, not when it ended"
        );
    }
}

/// The key of the list the waiters for job `id` of `queue` block on.
fn wake_key(backend: &RedisQueue, queue: &str, id: JobId) -> String {
    let (_, record) = outband_redis::keys_of(backend, queue, id);
    record.replacen(":j:", ":wf:", 1)
}

fn query<T: redis::FromRedisValue>(backend: &RedisQueue, cmd: &redis::Cmd) -> T {
    outband_redis::with_connection(backend, |con| cmd.query(con)).expect("a query")
}

/// Whether job `id`'s record says someone waits for it (field `h`).
fn marked(backend: &RedisQueue, queue: &str, id: JobId) -> bool {
    let (_, record) = outband_redis::keys_of(backend, queue, id);
    query::<i64>(backend, redis::cmd("HEXISTS").arg(&record).arg("h")) == 1
}

/// Six threads and two awaited waits on one job all return when it ends,
/// with no waiter left waiting for its timeout; the awaited ones do not
/// block the current-thread runtime they are awaited on.
#[test]
fn several_waiters_on_one_job_all_wake() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let id = backend.enqueue(echo_job("many", 1)).unwrap();
    let claimed = backend.claim("many", 1, LEASE).unwrap().remove(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let ticks = Arc::new(AtomicU64::new(0));
    let took = std::thread::scope(|scope| {
        let awaited = scope.spawn(|| {
            runtime.block_on(async {
                let ticker = tokio::spawn({
                    let ticks = Arc::clone(&ticks);
                    async move {
                        loop {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            ticks.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
                let start = Instant::now();
                let wait = || {
                    backend
                        .wait_finished_async(id, LONG)
                        .expect("Redis waits natively")
                };
                let (first, second) = tokio::join!(wait(), wait());
                first.and(second).expect("wait_finished_async");
                ticker.abort();
                start.elapsed()
            })
        });
        let mut took = woken_after(backend, id, 6, || {
            assert_eq!(
                backend.complete(&claimed.lease, done()).unwrap(),
                Completion::Applied
            );
        });
        took.push(awaited.join().expect("the awaited waits"));
        took
    });
    assert_woken("ended done", &took);
    assert!(
        ticks.load(Ordering::SeqCst) >= 10,
        "the runtime went on while the awaited waits blocked"
    );
}

/// A job that recovery sends to dead (its last attempt's lease expired),
/// or to cancelled (its cancel was requested), wakes its waiter.
#[test]
fn a_job_that_recovery_ends_wakes_its_waiter() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let short = Duration::from_millis(50);

    let id = backend
        .enqueue(echo_job("lost", 1).max_attempts(1))
        .unwrap();
    assert_eq!(backend.claim("lost", 1, short).unwrap().len(), 1);
    let took = woken_after(backend, id, 1, || {
        assert_eq!(backend.recover_expired().unwrap().dead, 1);
    });
    assert_woken("recovery sent to dead", &took);
    assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Dead);

    let id = backend.enqueue(echo_job("lost", 2)).unwrap();
    assert_eq!(backend.claim("lost", 1, short).unwrap().len(), 1);
    backend.cancel(id, "not wanted").unwrap();
    let took = woken_after(backend, id, 1, || {
        backend.recover_expired().unwrap();
    });
    assert_woken("recovery cancelled", &took);
    assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Cancelled);
}

/// A flush deletes pending jobs, ready ones and those waiting behind a
/// running job of their key alike: their waiters wake, to find them gone.
#[test]
fn a_flushed_job_wakes_its_waiter() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let ready = backend.enqueue(echo_job("flushed", 1)).unwrap();
    let owner = backend.enqueue(echo_job("flushed", 2).key("k")).unwrap();
    let behind = backend.enqueue(echo_job("flushed", 3).key("k")).unwrap();
    let claimed = backend.claim("flushed", 2, LEASE).unwrap();
    let claimed: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(claimed, vec![ready, owner]);
    let pending = backend.enqueue(echo_job("flushed", 4)).unwrap();

    std::thread::scope(|scope| {
        let waiters: Vec<_> = [pending, behind]
            .into_iter()
            .map(|id| {
                scope.spawn(move || {
                    let start = Instant::now();
                    backend.wait_finished(id, LONG).expect("wait_finished");
                    start.elapsed()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(backend.flush("flushed").unwrap(), 2);
        let took: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_woken("was flushed", &took);
    });
    assert!(backend.job(pending).unwrap().is_none());
    assert!(backend.job(behind).unwrap().is_none());
}

/// A wait leaves no key behind: one that times out leaves the record's
/// mark and no list; the end pushes the token, which expires within ten
/// seconds, and takes the mark off; a job nobody waits for gets neither.
#[test]
fn waits_leave_no_keys_behind() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let ids = backend
        .enqueue_many(vec![echo_job("keys", 1), echo_job("keys", 2)])
        .unwrap();
    let claimed = backend.claim("keys", 2, LEASE).unwrap();
    let (waited, alone) = (ids[0], ids[1]);
    let list = wake_key(backend, "keys", waited);
    let exists = |key: &str| query::<i64>(backend, redis::cmd("EXISTS").arg(key)) == 1;

    let start = Instant::now();
    backend
        .wait_finished(waited, Duration::from_millis(100))
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(90), "it timed out");
    assert!(marked(backend, "keys", waited), "the record says one waits");
    assert!(!exists(&list), "a pop that timed out leaves no list");

    for c in &claimed {
        backend.complete(&c.lease, done()).unwrap();
    }
    assert!(
        !marked(backend, "keys", waited),
        "the end takes the mark off"
    );
    assert_eq!(query::<i64>(backend, redis::cmd("LLEN").arg(&list)), 1);
    let ttl: i64 = query(backend, redis::cmd("PTTL").arg(&list));
    assert!(ttl > 0 && ttl <= 10_000, "the token expires: {ttl}");

    let start = Instant::now();
    backend.wait_finished(waited, LONG).unwrap();
    backend.wait_finished(alone, LONG).unwrap();
    assert!(start.elapsed() < LONG / 4, "ended jobs need no wait");
    assert_eq!(
        query::<i64>(backend, redis::cmd("LLEN").arg(&list)),
        1,
        "the token stays one"
    );
    assert!(!marked(backend, "keys", alone));
    assert!(!exists(&wake_key(backend, "keys", alone)));
}

/// A dead job retried is pending again: the token its end left does not
/// wake its next waiter, whom its next end wakes.
#[test]
fn a_retried_dead_job_is_waited_for_anew() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let id = backend
        .enqueue(echo_job("again", 1).max_attempts(1))
        .unwrap();
    let claimed = backend.claim("again", 1, LEASE).unwrap().remove(0);
    let dead = Outcome::Dead { error: "no".into() };
    let took = woken_after(backend, id, 1, || {
        backend.complete(&claimed.lease, dead).unwrap();
    });
    assert_woken("ended dead", &took);
    assert!(backend.retry_dead(id).unwrap());

    let start = Instant::now();
    backend
        .wait_finished(id, Duration::from_millis(300))
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "the old token woke the waiter of a pending job after {:?}",
        start.elapsed()
    );
    let claimed = backend.claim("again", 1, LEASE).unwrap().remove(0);
    let took = woken_after(backend, id, 1, || {
        backend.complete(&claimed.lease, done()).unwrap();
    });
    assert_woken("ended done after a retry", &took);
}

/// Adds after a pause, so that a handle waits for it.
#[queue_command(queue = "handle-result")]
fn slow_sum(a: u32, b: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(300));
    a + b
}

/// `JobHandle::result`, awaited, on a job that a processor runs: the value
/// comes back when the job is done, through the backend's awaited wake-up.
#[tokio::test]
async fn an_awaited_result_returns_when_the_job_is_done() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = Arc::clone(&scoped.backend);
    assert!(backend.capabilities().finish_wakeups);
    let handle = slow_sum::enqueue(20, 22).on(&backend).await.unwrap();
    let config = ProcessorConfig::default()
        .queues(["handle-result"])
        .wait_time(Duration::from_millis(50));
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    let start = Instant::now();
    let sum = handle.result(LONG).await;
    let took = start.elapsed();
    processor.stop();
    assert_eq!(sum.unwrap(), 42);
    assert!(took < LONG / 4, "the result took {took:?}");
    assert_eq!(
        backend.job(handle.id()).unwrap().unwrap().state,
        JobState::Done
    );
}
