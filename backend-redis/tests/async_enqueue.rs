//! Awaited enqueues through the native async connection
//! ([`AsyncEnqueue`], on the backend's own runtime) against the Redis at
//! `REDIS_URL`: they store what the sync path stores, on whatever runtime
//! the caller awaits them, without blocking it, and fail as the sync path
//! fails.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use outband::{AsyncEnqueue, BaseQueue, Error, Job, JobId, JobState, NewJob};
use outband_redis::{RedisOptions, RedisQueue};

const LEASE: Duration = Duration::from_secs(60);

fn job(queue: &str, value: u64) -> NewJob {
    NewJob::new(
        "app::awaited",
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue(queue)
}

/// A command, enqueued below the way an application enqueues it.
#[outband::queue_command(queue = "command", retries = 2, key = account)]
fn note(account: String, value: u64) -> Result<(), String> {
    let _ = (account, value);
    Ok(())
}

/// What an enqueue decides about a job: everything but its id and times.
fn stored(job: &Job) -> (&str, &[u8], &str, Option<&str>, i16, u32, JobState) {
    (
        &job.command,
        &job.args,
        &job.queue,
        job.key.as_deref(),
        job.priority,
        job.max_attempts,
        job.state,
    )
}

fn record(backend: &RedisQueue, id: JobId) -> Job {
    backend
        .job(id)
        .expect("reads the job")
        .unwrap_or_else(|| panic!("job {id} is stored"))
}

/// The one-job script and the batch script, each awaited and each sent
/// again through the sync path: the same records, ids in the order given,
/// and a sync claim takes the awaited jobs as it takes the others.
#[tokio::test]
async fn awaited_enqueues_store_what_a_sync_claim_finds() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let batches = [
        vec![job("awaited", 1)],
        vec![
            job("awaited", 2),
            job("awaited", 3).key("account-7"),
            job("awaited", 4).priority(5).max_attempts(9),
            job("elsewhere", 5),
            job("awaited", 6).when(later),
        ],
    ];
    let mut awaited = Vec::new();
    for batch in &batches {
        let ids = backend
            .enqueue_many_async(batch.clone())
            .await
            .expect("awaited enqueue");
        let again = backend.enqueue_many(batch.clone()).expect("sync enqueue");
        assert_eq!(ids.len(), batch.len());
        for ((job, id), sync_id) in batch.iter().zip(&ids).zip(&again) {
            let (a, s) = (record(backend, *id), record(backend, *sync_id));
            assert_eq!(a.args, job.args, "ids come in the order given");
            assert_eq!(
                stored(&a),
                stored(&s),
                "job {id} and its sync twin {sync_id}"
            );
            assert_eq!(a.run_at > SystemTime::now(), job.when != outband::When::Now);
        }
        awaited.extend(ids);
    }
    let id = note::enqueue("account-9".to_owned(), 10)
        .on(&scoped.backend)
        .await
        .expect("an awaited command")
        .id();
    let command = record(backend, id);
    assert_eq!(
        (
            command.queue.as_str(),
            command.key.as_deref(),
            command.max_attempts
        ),
        ("command", Some("account-9"), 3)
    );

    let claimed = backend.claim("awaited", 100, LEASE).expect("claim");
    let ready: Vec<JobId> = [3, 0, 1, 2].map(|i| awaited[i]).to_vec();
    let mine: Vec<JobId> = claimed
        .iter()
        .map(|c| c.job.id)
        .filter(|id| awaited.contains(id))
        .collect();
    assert_eq!(mine, ready, "by priority, then in enqueue order");
    for c in &claimed {
        assert_eq!(c.job.state, JobState::Running);
    }
    let elsewhere = backend.claim("elsewhere", 100, LEASE).expect("claim");
    assert!(elsewhere.iter().any(|c| c.job.id == awaited[4]));
    let stats = backend.stats("awaited").expect("stats");
    // each path's scheduled job, and the sync twin of the keyed job, behind
    // the awaited one that now runs
    assert_eq!(stats.pending, 3);
    assert!(
        backend
            .queues()
            .expect("queues")
            .contains(&"command".to_owned()),
        "an awaited enqueue registers its queue"
    );
}

/// A job's own timeout goes through the awaited path as through the sync
/// one, by the one-job script and by the batch script alike: to the whole
/// millisecond, and none where none was given.
#[tokio::test]
async fn awaited_enqueues_store_a_jobs_own_timeout() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let batches = [
        vec![job("timed", 1).timeout(Duration::from_micros(1_500_900))],
        vec![
            job("timed", 2),
            job("timed", 3).timeout(Duration::from_secs(30)),
            job("timed", 4)
                .key("account-7")
                .timeout(Duration::from_millis(7)),
        ],
    ];
    let mut expected = Vec::new();
    for batch in batches {
        let ids = backend
            .enqueue_many_async(batch.clone())
            .await
            .expect("awaited enqueue");
        for (job, id) in batch.iter().zip(ids) {
            let whole = job
                .timeout
                .map(|t| Duration::from_millis(u64::try_from(t.as_millis()).unwrap()));
            assert_eq!(record(backend, id).timeout, whole, "job {id} as stored");
            expected.push((id, whole));
        }
    }
    let claimed = backend.claim("timed", 10, LEASE).expect("claim");
    assert_eq!(claimed.len(), expected.len());
    for (claimed, (id, timeout)) in claimed.iter().zip(expected) {
        assert_eq!((claimed.job.id, claimed.job.timeout), (id, timeout));
    }
}

/// Enqueues one job, awaited on `runtime`.
fn enqueue_on(runtime: &tokio::runtime::Runtime, backend: &Arc<RedisQueue>, value: u64) -> JobId {
    let backend = Arc::clone(backend);
    runtime.block_on(async move {
        let ids = backend
            .enqueue_many_async(vec![job("runtimes", value)])
            .await
            .expect("awaited enqueue");
        ids[0]
    })
}

/// The connection lives on the backend's runtime, not the caller's: it
/// outlives each caller's runtime, and a caller's runtime needs neither
/// timers nor I/O.
#[test]
fn awaits_on_runtimes_one_after_another_all_work() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let mut ids = Vec::new();
    for value in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        ids.push(enqueue_on(&runtime, backend, value));
    }
    let multi_thread = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    ids.push(enqueue_on(&multi_thread, backend, 2));
    drop(multi_thread);
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime with no drivers");
    ids.push(enqueue_on(&bare, backend, 3));

    let claimed = backend.claim("runtimes", 10, LEASE).expect("claim");
    let found: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(found, ids);
}

/// A thousand awaited enqueues at once on a current-thread runtime, with a
/// watchdog task beside them that counts its turns while any is in flight.
/// An enqueue that blocked the thread would finish within its first poll,
/// so the watchdog could never see one in flight.
#[tokio::test]
async fn a_thousand_awaited_enqueues_leave_a_current_thread_runtime_running() {
    const JOBS: u64 = 1000;
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let in_flight = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = tokio::spawn({
        let (in_flight, finished) = (Arc::clone(&in_flight), Arc::clone(&finished));
        async move {
            let (mut turns_in_flight, mut most_in_flight) = (0u64, 0);
            while !finished.load(Ordering::SeqCst) {
                let now = in_flight.load(Ordering::SeqCst);
                if now > 0 {
                    turns_in_flight += 1;
                    most_in_flight = most_in_flight.max(now);
                }
                tokio::task::yield_now().await;
            }
            (turns_in_flight, most_in_flight)
        }
    });
    let enqueues: Vec<_> = (0..JOBS)
        .map(|value| {
            let (backend, in_flight) = (Arc::clone(&scoped.backend), Arc::clone(&in_flight));
            tokio::spawn(async move {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let ids = backend.enqueue_many_async(vec![job("many", value)]).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for enqueue in enqueues {
        ids.extend(enqueue.await.expect("the task").expect("awaited enqueue"));
    }
    finished.store(true, Ordering::SeqCst);
    let (turns_in_flight, most_in_flight) = watchdog.await.expect("the watchdog");
    assert!(
        turns_in_flight > 0,
        "the watchdog never ran while an enqueue was in flight"
    );
    assert!(most_in_flight > 1, "the enqueues never overlapped");

    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, JOBS, "every id is new");
    assert_eq!(scoped.backend.len("many").expect("len"), JOBS);
}

/// Validation comes first on both paths: the same error, and nothing
/// stored, not even the queue's name.
#[tokio::test]
async fn an_invalid_job_is_refused_as_the_sync_path_refuses_it() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let invalid = [
        NewJob::new("", Vec::new()).queue("refused"),
        job("", 1),
        job("refused", 1).max_attempts(0),
        job("refused", 1).timeout(Duration::from_micros(500)),
    ];
    for bad in invalid {
        let batch = vec![job("refused", 0), bad];
        let sync = backend
            .enqueue_many(batch.clone())
            .expect_err("the sync path refuses it");
        let awaited = backend
            .enqueue_many_async(batch)
            .await
            .expect_err("the awaited path refuses it");
        assert!(matches!(awaited, Error::InvalidJob(_)), "{awaited:?}");
        assert_eq!(awaited.to_string(), sync.to_string());
    }
    assert_eq!(backend.len("refused").expect("len"), 0);
    assert!(backend.queues().expect("queues").is_empty());
    let none = backend.enqueue_many_async(Vec::new()).await;
    assert!(none.expect("an empty batch").is_empty());
}

/// A port nothing listens on: unavailable at once, and again on the next
/// call, which meets the reconnection backoff; no server is needed.
#[tokio::test]
async fn a_server_out_of_reach_is_unavailable() {
    let port = outband_testkit::free_port();
    let backend = RedisQueue::connect(&format!("redis://127.0.0.1:{port}/0")).expect("a URL");
    for attempt in 0..2 {
        let error = backend
            .enqueue_many_async(vec![job("down", attempt)])
            .await
            .expect_err("nothing listens");
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
        assert!(error.is_retryable());
    }
}
