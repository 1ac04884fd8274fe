//! What the conformance suite does not cover and the Redis backend promises:
//! malformed records, wake-ups, the dead-letter cap, retention, progress
//! through dead jobs and the combined complete-and-claim, a cancel request
//! in the record, refused enqueues, a job's own timeout in the record,
//! listing through a shared bucket and damaged records, opening by URL, and
//! where a pause lives, and where the consumer registry lives and how it
//! forgets.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::test_suite::echo;
use outband::{
    BaseQueue, Cancellation, Completion, Error, JobId, JobQuery, JobState, NewJob, Outcome,
    ProcessorConfig, Progress, RetryPolicy, SimpleProcessor,
};
use outband_redis::{RedisOptions, RedisQueue};

const LEASE: Duration = Duration::from_secs(60);

fn echo_job(queue: &str, value: u64) -> NewJob {
    NewJob::new(
        echo::NAME,
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue(queue)
}

fn hset(backend: &RedisQueue, key: &str, field: &str, value: &str) {
    outband_redis::with_connection(backend, |con| {
        redis::cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query::<i64>(con)
    })
    .expect("HSET");
}

#[test]
fn malformed_records_go_to_dead_and_the_consumer_goes_on() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let garbled_counts = backend.enqueue(echo_job("q", 1)).unwrap();
    let no_command = backend.enqueue(echo_job("q", 2)).unwrap();
    let bad_state = backend.enqueue(echo_job("q", 3)).unwrap();
    let good = backend.enqueue(echo_job("q", 4)).unwrap();
    let (_, record) = outband_redis::keys_of(backend, "q", garbled_counts);
    hset(backend, &record, "m", "many");
    let (_, record) = outband_redis::keys_of(backend, "q", no_command);
    hset(backend, &record, "c", "");
    let (_, record) = outband_redis::keys_of(backend, "q", bad_state);
    hset(backend, &record, "s", "exploded");

    let config = ProcessorConfig::default()
        .queues(["q"])
        .retry(RetryPolicy::immediate());
    let processor = SimpleProcessor::new(backend.clone(), config).unwrap();
    while processor.process_next().unwrap() {}

    for id in [garbled_counts, no_command, bad_state] {
        let job = backend.job(id).unwrap().expect("kept in dead");
        assert_eq!(job.state, JobState::Dead, "job {id}");
        let error = job.last_error.unwrap_or_default();
        assert!(error.starts_with("malformed record: "), "job {id}: {error}");
    }
    assert_eq!(backend.job(good).unwrap().unwrap().state, JobState::Done);
    let stats = backend.stats("q").unwrap();
    assert_eq!((stats.pending, stats.dead, stats.done), (0, 3, 1));
}

/// Blocks a thread in `wait` with a long timeout, runs `make_ready` from
/// another handle, and returns how long the waiter waited.
fn waited_for(backend: &Arc<RedisQueue>, make_ready: impl FnOnce()) -> Duration {
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let start = Instant::now();
            backend
                .wait(&["w".to_owned()], Duration::from_secs(60))
                .unwrap();
            start.elapsed()
        });
        // the waiter blocks in BLPOP: give it time to get there (either way
        // it returns when woken, since the wake-up token waits for it)
        std::thread::sleep(Duration::from_millis(50));
        make_ready();
        waiter.join().unwrap()
    })
}

/// The wake-up tokens waiting in the list of `name`, the queue of job `id`.
fn wake_up_tokens(backend: &RedisQueue, name: &str, id: JobId) -> i64 {
    let (base, _) = outband_redis::keys_of(backend, name, id);
    outband_redis::with_connection(backend, |con| {
        redis::cmd("LLEN").arg(format!("{base}:wake")).query(con)
    })
    .unwrap()
}

#[test]
fn wake_up_tokens_nobody_takes_stay_bounded() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let first = backend.enqueue(echo_job("idle", 0)).unwrap();
    let tokens = || wake_up_tokens(backend, "idle", first);
    let (mut most, mut enqueued) = (0, 1);
    for i in 1..200 {
        if i % 2 == 0 {
            backend.enqueue(echo_job("idle", i)).unwrap();
            enqueued += 1;
        } else {
            backend
                .enqueue_many(vec![echo_job("idle", i), echo_job("idle", i)])
                .unwrap();
            enqueued += 2;
        }
        most = most.max(tokens());
    }
    assert!(tokens() >= 1, "a token waits for the next consumer");
    assert!(most <= 33, "at most 33 tokens, seen {most}");
    assert_eq!(backend.len("idle").unwrap(), enqueued);
}

#[test]
fn an_enqueue_wakes_a_waiting_consumer_and_a_key_hand_over_pushes_a_wake_up() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let waited = waited_for(backend, || {
        backend.enqueue(echo_job("w", 1)).unwrap();
    });
    assert!(waited < Duration::from_secs(60), "woken by the enqueue");
    backend.flush("w").unwrap();

    backend.enqueue(echo_job("w", 1).key("k")).unwrap();
    backend.enqueue(echo_job("w", 2).key("k")).unwrap();
    let first = backend.claim("w", 10, LEASE).unwrap().pop().unwrap();
    // drop the wake-up tokens of the enqueues, so only the hand-over can wake
    let (base, _) = outband_redis::keys_of(backend, "w", first.job.id);
    let wake = format!("{base}:wake");
    outband_redis::with_connection(backend, |con| {
        redis::cmd("DEL").arg(&wake).query::<i64>(con)
    })
    .unwrap();
    assert!(
        !backend.has_jobs_waiting("w").unwrap(),
        "the second job waits for its key"
    );
    let done = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    backend.complete(&first.lease, done).unwrap();
    assert_eq!(
        wake_up_tokens(backend, "w", first.job.id),
        1,
        "the hand-over pushes a wake-up token"
    );
    backend
        .wait(&["w".to_owned()], Duration::from_secs(60))
        .unwrap();
    assert_eq!(backend.claim("w", 10, LEASE).unwrap().len(), 1);
}

#[test]
fn the_dead_letter_cap_drops_only_the_oldest() {
    let Some(scoped) = support::test_queue(RedisOptions::default().dead_cap(Some(2))) else {
        return;
    };
    let backend = &scoped.backend;
    let ids = backend
        .enqueue_many((0..3).map(|i| echo_job("d", i)).collect())
        .unwrap();
    for claimed in backend.claim("d", 3, LEASE).unwrap() {
        let dead = Outcome::Dead { error: "x".into() };
        backend.complete(&claimed.lease, dead).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(backend.stats("d").unwrap().dead, 2);
    assert!(
        backend.job(ids[0]).unwrap().is_none(),
        "the oldest is dropped"
    );
    let kept: Vec<_> = backend
        .dead_jobs("d", 0, 10)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(kept, vec![ids[2], ids[1]]);
}

#[test]
fn without_a_cap_dead_jobs_stay_and_done_jobs_expire_after_the_retention() {
    let options = RedisOptions::default().retention(Some(Duration::from_secs(600)));
    let Some(scoped) = support::test_queue(options) else {
        return;
    };
    let backend = &scoped.backend;
    let ids = backend
        .enqueue_many((0..30).map(|i| echo_job("r", i)).collect())
        .unwrap();
    let claimed = backend.claim("r", 30, LEASE).unwrap();
    let (done, dead) = claimed.split_at(1);
    let outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(3),
    };
    backend.complete(&done[0].lease, outcome).unwrap();
    for claimed in dead {
        let dead = Outcome::Dead { error: "x".into() };
        backend.complete(&claimed.lease, dead).unwrap();
    }
    assert_eq!(
        backend.stats("r").unwrap().dead,
        29,
        "no cap, nothing dropped"
    );
    let (_, record) = outband_redis::keys_of(backend, "r", ids[0]);
    let ttl: i64 =
        outband_redis::with_connection(backend, |con| redis::cmd("PTTL").arg(&record).query(con))
            .unwrap();
    assert!(ttl > 0 && ttl <= 600_000, "a done record expires: {ttl}");
    let (_, record) = outband_redis::keys_of(backend, "r", ids[1]);
    let ttl: i64 =
        outband_redis::with_connection(backend, |con| redis::cmd("PTTL").arg(&record).query(con))
            .unwrap();
    assert_eq!(ttl, -1, "a dead record does not expire");
}

#[test]
fn progress_stays_with_a_dead_job_and_leaves_the_record_at_the_next_claim() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let ids = backend
        .enqueue_many((0..2).map(|i| echo_job("g", i)).collect())
        .unwrap();
    let claimed = backend.claim("g", 2, LEASE).unwrap();
    let [first, second] = claimed.as_slice() else {
        panic!("two claimed: {claimed:?}");
    };
    assert_eq!((first.job.id, second.job.id), (ids[0], ids[1]));
    let failing = Progress::new(0.3, "étape 3/10 — 🧮");
    let finishing = Progress::new(0.9, "nearly");
    for (claimed, progress) in [(first, &failing), (second, &finishing)] {
        assert_eq!(
            backend.progress(&claimed.lease, progress).unwrap(),
            Completion::Applied
        );
    }
    let dead = Outcome::Dead { error: "x".into() };
    backend.complete(&first.lease, dead).unwrap();
    let job = backend.job(ids[0]).unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.progress.as_ref(), Some(&failing), "a dead job keeps it");
    assert_eq!(
        backend.dead_jobs("g", 0, 10).unwrap()[0].progress.as_ref(),
        Some(&failing)
    );

    assert!(backend.retry_dead(ids[0]).unwrap());
    let done = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    let (completed, next) = backend
        .complete_and_claim(vec![(second.lease.clone(), done)], "g", 1, LEASE)
        .unwrap();
    assert_eq!(completed, vec![Completion::Applied]);
    assert_eq!(
        backend.job(ids[1]).unwrap().unwrap().progress,
        Some(finishing),
        "a done job keeps it"
    );
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job.id, ids[0]);
    assert_eq!(
        next[0].job.progress, None,
        "the claimed job starts with none"
    );
    assert_eq!(backend.job(ids[0]).unwrap().unwrap().progress, None);
    let (_, record) = outband_redis::keys_of(backend, "g", ids[0]);
    let left: Vec<Option<String>> = outband_redis::with_connection(backend, |con| {
        redis::cmd("HMGET")
            .arg(&record)
            .arg("g")
            .arg("t")
            .query(con)
    })
    .unwrap();
    assert_eq!(
        left,
        [None, None],
        "the claim removes both fields from the record"
    );
}

/// The reason of a cancel requested while a job runs is its record's field
/// `z`, kept from the first request: a retry through the combined
/// complete-and-claim ends the job `cancelled` and the claim goes on without
/// it; a done attempt drops the request; a cancelled record expires after
/// the retention as a done one does.
#[test]
fn a_cancel_request_is_a_field_of_the_record_until_the_attempt_ends() {
    let options = RedisOptions::default().retention(Some(Duration::from_secs(600)));
    let Some(scoped) = support::test_queue(options) else {
        return;
    };
    let backend = &scoped.backend;
    let ids = backend
        .enqueue_many((0..3).map(|i| echo_job("cx", i)).collect())
        .unwrap();
    let claimed = backend.claim("cx", 2, LEASE).unwrap();
    assert_eq!(claimed.len(), 2);
    let field = |id, name: &str| -> Option<String> {
        let (_, record) = outband_redis::keys_of(backend, "cx", id);
        outband_redis::with_connection(backend, |con| {
            redis::cmd("HGET").arg(&record).arg(name).query(con)
        })
        .unwrap()
    };
    for c in &claimed {
        assert_eq!(
            backend.cancel(c.job.id, "stop").unwrap(),
            Cancellation::Requested
        );
    }
    assert_eq!(
        backend.cancel(ids[0], "stop again").unwrap(),
        Cancellation::Requested
    );
    assert_eq!(
        field(ids[0], "z").as_deref(),
        Some("stop"),
        "the first reason"
    );

    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "failed".into(),
    };
    let (completed, next) = backend
        .complete_and_claim(vec![(claimed[0].lease.clone(), retry)], "cx", 5, LEASE)
        .unwrap();
    assert_eq!(completed, vec![Completion::Applied]);
    let next: Vec<_> = next.iter().map(|c| c.job.id).collect();
    assert_eq!(next, vec![ids[2]], "the cancelled job does not run again");
    let job = backend.job(ids[0]).unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.last_error.as_deref(), Some("stop"));
    assert_eq!(
        field(ids[0], "z"),
        None,
        "the request ends with the attempt"
    );
    let (_, record) = outband_redis::keys_of(backend, "cx", ids[0]);
    let ttl: i64 =
        outband_redis::with_connection(backend, |con| redis::cmd("PTTL").arg(&record).query(con))
            .unwrap();
    assert!(
        ttl > 0 && ttl <= 600_000,
        "a cancelled record expires: {ttl}"
    );

    let done = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    backend.complete(&claimed[1].lease, done).unwrap();
    let job = backend.job(ids[1]).unwrap().unwrap();
    assert_eq!((job.state, job.last_error), (JobState::Done, None));
    assert_eq!(field(ids[1], "z"), None, "a done job keeps no request");
    let stats = backend.stats("cx").unwrap();
    assert_eq!(
        (stats.running, stats.done, stats.cancelled),
        (1, 1, 1),
        "{stats:?}"
    );
}

#[test]
fn an_enqueue_that_cannot_be_stored_fails_at_once() {
    // nothing listens on this port
    let port = outband_testkit::free_port();
    let down = RedisQueue::connect(&format!("redis://127.0.0.1:{port}/")).unwrap();
    let refused = down.enqueue(echo_job("e", 1));
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
    // and again, during the reconnection backoff
    let refused = down.enqueue(echo_job("e", 1));
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");

    for url in [
        "redis//nowhere",
        "redis://h/?dead_cap=lots",
        "redis://h/?namespace=",
    ] {
        assert!(
            matches!(RedisQueue::connect(url), Err(Error::Config(_))),
            "{url}"
        );
    }

    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let too_big = NewJob::new(echo::NAME, vec![0; outband::codec::max_payload() + 1]).queue("e");
    assert!(backend.enqueue(too_big).is_err());
    assert_eq!(backend.len("e").unwrap(), 0);
}

#[test]
fn outband_open_finds_the_redis_schemes() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let url = format!(
        "{}?namespace={}",
        support::redis_url().trim_end_matches('/'),
        scoped.namespace
    );
    let url = if url.contains("/?") {
        url
    } else {
        url.replacen('?', "/?", 1)
    };
    let backend = outband::open(&url).expect("redis:// is registered");
    let id = backend.enqueue(echo_job("o", 7)).unwrap();
    assert_eq!(
        scoped.backend.job(id).unwrap().unwrap().state,
        JobState::Pending
    );
}

#[test]
fn a_waiting_consumer_wakes_when_a_scheduled_job_falls_due() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    backend
        .enqueue(echo_job("s", 1).when(Duration::from_millis(200)))
        .unwrap();
    assert!(!backend.has_jobs_waiting("s").unwrap());
    let start = Instant::now();
    // nothing pushes a wake-up for a due job: wait's own timeout ends at the due time
    backend
        .wait(&["s".to_owned()], Duration::from_secs(60))
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(60), "woken when due");
    let mut claimed = Vec::new();
    while claimed.is_empty() {
        claimed = backend.claim("s", 1, LEASE).unwrap();
        if claimed.is_empty() {
            backend
                .wait(&["s".to_owned()], Duration::from_secs(60))
                .unwrap();
        }
    }
    assert_eq!(claimed.len(), 1);
}

fn key_exists(backend: &RedisQueue, key: &str) -> bool {
    outband_redis::with_connection(backend, |con| {
        redis::cmd("EXISTS").arg(key).query::<i64>(con)
    })
    .unwrap()
        == 1
}

/// The pause is the key `B:paused`: another handle (a restarted consumer)
/// sees it, flushes and purges keep it, a due scheduled job does not count
/// as ready while it is set, the probe drops the queue's wake-up tokens,
/// the resume deletes the key and wakes a waiting consumer, and the
/// namespace cleanup deletes the pause with the rest.
#[test]
fn a_pause_lives_in_redis_and_a_resume_wakes_a_waiting_consumer() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    assert!(backend.pause("w").unwrap());
    let flushed = backend.enqueue(echo_job("w", 1)).unwrap();
    let (base, _) = outband_redis::keys_of(backend, "w", flushed);
    let pause_key = format!("{base}:paused");
    assert!(key_exists(backend, &pause_key));

    let restarted = RedisQueue::with_options(
        &support::redis_url(),
        RedisOptions::default().namespace(scoped.namespace.clone()),
    )
    .unwrap();
    assert_eq!(restarted.paused().unwrap(), vec!["w".to_owned()]);
    assert!(restarted.stats("w").unwrap().paused);
    assert!(restarted.claim("w", 10, LEASE).unwrap().is_empty());

    assert_eq!(backend.flush("w").unwrap(), 1);
    backend.purge(Duration::ZERO).unwrap();
    assert!(key_exists(backend, &pause_key), "flush and purge keep it");

    let due = backend
        .enqueue(echo_job("w", 2).when(Duration::from_millis(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // the first enqueue's token is still there: nothing took it
    assert!(wake_up_tokens(backend, "w", due) > 0);
    assert!(
        !backend.has_jobs_waiting("w").unwrap(),
        "a due job of a paused queue is not ready"
    );
    assert_eq!(
        wake_up_tokens(backend, "w", due),
        0,
        "the probe drops a paused queue's tokens"
    );
    assert!(restarted.claim("w", 10, LEASE).unwrap().is_empty());

    let waited = waited_for(backend, || {
        assert!(restarted.resume("w").unwrap());
    });
    assert!(waited < Duration::from_secs(60), "woken by the resume");
    assert!(!key_exists(backend, &pause_key));
    assert!(backend.paused().unwrap().is_empty());
    let claimed = backend.claim("w", 10, LEASE).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, due);

    assert!(backend.pause("w").unwrap());
    outband_redis::delete_namespace(backend, &scoped.namespace).unwrap();
    assert!(!key_exists(backend, &pause_key));
    assert!(backend.paused().unwrap().is_empty());
}

/// A job's own timeout is the record's `w`, in milliseconds, only when the
/// job has one; a release, a dead end, the dead list and a retry of the
/// dead job keep it.
#[test]
fn a_jobs_own_timeout_is_a_field_only_when_set() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let timeout = Duration::from_millis(2500);
    let alone = backend.enqueue(echo_job("to", 1).timeout(timeout)).unwrap();
    let plain = backend.enqueue(echo_job("to", 2)).unwrap();
    let batch = backend
        .enqueue_many(vec![
            echo_job("to", 3).priority(2),
            echo_job("to", 4).priority(2).timeout(timeout),
        ])
        .unwrap();
    let field = |id| {
        let (_, record) = outband_redis::keys_of(backend, "to", id);
        outband_redis::with_connection(backend, |con| {
            redis::cmd("HGET")
                .arg(&record)
                .arg("w")
                .query::<Option<String>>(con)
        })
        .unwrap()
    };
    assert_eq!(field(alone).as_deref(), Some("2500"));
    assert_eq!(field(plain), None, "no timeout, no field");
    assert_eq!(field(batch[0]), None, "no timeout, no field");
    assert_eq!(field(batch[1]).as_deref(), Some("2500"));

    let claimed = backend.claim("to", 10, LEASE).unwrap();
    let lease_of = |id| {
        claimed
            .iter()
            .find(|c| c.job.id == id)
            .map(|c| c.lease.clone())
            .unwrap()
    };
    backend
        .complete(&lease_of(alone), Outcome::Release)
        .unwrap();
    let error = "gave up".to_owned();
    backend
        .complete(&lease_of(batch[1]), Outcome::Dead { error })
        .unwrap();
    assert_eq!(backend.job(alone).unwrap().unwrap().timeout, Some(timeout));
    let dead = backend.dead_jobs("to", 0, 10).unwrap();
    assert_eq!(
        dead.iter().map(|j| (j.id, j.timeout)).collect::<Vec<_>>(),
        [(batch[1], Some(timeout))]
    );
    assert!(backend.retry_dead(batch[1]).unwrap());
    let again = backend.claim("to", 10, LEASE).unwrap();
    let mut seen: Vec<_> = again.iter().map(|c| (c.job.id, c.job.timeout)).collect();
    seen.sort_unstable();
    assert_eq!(seen, [(alone, Some(timeout)), (batch[1], Some(timeout))]);
}

/// Every job a listing of `query` gives, page after page.
fn listed(backend: &RedisQueue, mut query: JobQuery) -> Vec<JobId> {
    let mut seen = Vec::new();
    loop {
        let page = backend.jobs(&query).unwrap();
        seen.extend(page.jobs.iter().map(|job| job.id));
        match page.next {
            Some(next) => query = query.before(next),
            None => return seen,
        }
    }
}

#[test]
fn listing_passes_over_a_shared_bucket_and_reads_damaged_records_as_job_does() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    // two queue names whose keys share a hash tag: one bucket, one numbering
    let tag = |name: &str| {
        let (base, _) = outband_redis::keys_of(backend, name, JobId(0));
        base[..base.find('}').unwrap()].to_owned()
    };
    let names: Vec<String> = (0..5000).map(|i| format!("shared-{i}")).collect();
    let (mine, theirs) = names
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            let b = names[..i].iter().find(|b| tag(b) == tag(a))?;
            Some((a.as_str(), b.as_str()))
        })
        .expect("two names in one bucket");

    let mut own = Vec::new();
    for n in 0..6 {
        own.push(backend.enqueue(echo_job(mine, n)).unwrap());
        backend
            .enqueue_many((0..3).map(|i| echo_job(theirs, i)).collect())
            .unwrap();
    }
    let newest_first: Vec<JobId> = own.iter().rev().copied().collect();
    for limit in [1, 2, 50] {
        let query = JobQuery::new(mine, JobState::Pending).limit(limit);
        assert_eq!(listed(backend, query), newest_first, "limit {limit}");
    }
    let above_every_bucket = JobQuery::new(mine, JobState::Pending).before(JobId(u64::MAX));
    assert_eq!(listed(backend, above_every_bucket), newest_first);

    let record = |id| outband_redis::keys_of(backend, mine, id).1;
    hset(backend, &record(own[1]), "s", "exploded");
    outband_redis::with_connection(backend, |con| {
        redis::cmd("HDEL")
            .arg(record(own[2]))
            .arg("s")
            .query::<i64>(con)?;
        redis::cmd("DEL").arg(record(own[3])).query::<i64>(con)
    })
    .unwrap();
    assert_eq!(
        listed(backend, JobQuery::new(mine, JobState::Pending)),
        [own[5], own[4], own[0]],
        "a deleted record is passed over"
    );
    let page = backend.jobs(&JobQuery::new(mine, JobState::Dead)).unwrap();
    assert_eq!(
        page.jobs.iter().map(|job| job.id).collect::<Vec<_>>(),
        [own[2], own[1]],
        "a record in a state this crate does not know, or in none, is dead"
    );
    for job in page.jobs {
        assert_eq!(Some(job.clone()), backend.job(job.id).unwrap());
    }
}

/// Consumers are registered in their namespace only, and one gone for
/// `CONSUMER_FORGET_AFTER` is neither listed nor kept: a listing deletes
/// its keys.
#[test]
fn consumers_live_in_their_namespace_and_are_forgotten() {
    let (Some(scoped), Some(other)) = (
        support::test_queue(RedisOptions::default()),
        support::test_queue(RedisOptions::default()),
    ) else {
        return;
    };
    let backend = &scoped.backend;
    let info = outband::ConsumerInfo::this_process(["q"], 1, 0);
    backend
        .register_consumer(&info, Duration::from_secs(60))
        .unwrap();
    let listed = backend.consumers().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].info, info);
    assert!(
        other.backend.consumers().unwrap().is_empty(),
        "another namespace lists none"
    );

    // gone, since a minute longer than the registry keeps gone consumers
    let now = backend.now().unwrap();
    let long_ago = now - outband::CONSUMER_FORGET_AFTER - Duration::from_secs(60);
    let micros = long_ago
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        .to_string();
    let tag = format!("{{{}:consumers}}", scoped.namespace);
    outband_redis::with_connection(backend, |con| {
        redis::cmd("ZADD")
            .arg(format!("{tag}:expires"))
            .arg(&micros)
            .arg(&info.id)
            .query::<i64>(con)
    })
    .unwrap();
    assert!(backend.consumers().unwrap().is_empty(), "forgotten");
    let kept: i64 = outband_redis::with_connection(backend, |con| {
        redis::cmd("HEXISTS")
            .arg(format!("{tag}:info"))
            .arg(&info.id)
            .query(con)
    })
    .unwrap();
    assert_eq!(kept, 0, "its keys are deleted");
}
