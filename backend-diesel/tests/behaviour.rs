//! What the conformance suite does not cover: transactional enqueue, bad
//! records and rows of an unknown state, bad URLs, unreachable servers, open by URL, the PostgreSQL
//! wake-up, the prefix check, pauses kept in the database, unique keys kept as rows, and
//! progress, a job's own timeout and cancel requests through batches of outcomes, concurrency
//! limits and rate limits stored by every enqueue path, rate limits under racing claims, the
//! consumer registry kept per table prefix and forgetting gone consumers — on
//! every database that is enabled.

mod common;

use std::time::Duration;

use diesel::prelude::*;
use outband::{
    BaseQueue, Cancellation, Completion, Concurrency, Enqueued, Error, Heartbeat, JobQuery,
    JobState, NewJob, Outcome, Progress, RateLimit, Unique, UniqueUntil,
};
use outband_diesel::{DatabaseQueue, JobConnection};

/// Credits an account: a typed command for `enqueue_in`.
#[outband::queue_command(queue = "tx-typed", priority = 3, retries = 1, key = account)]
fn credit(account: u64, cents: i64) {
    let _ = (account, cents);
}

fn job(queue: &str) -> NewJob {
    NewJob::new(
        "app::job",
        outband::codec::encode(&(1u64,)).expect("encodes"),
    )
    .queue(queue)
}

/// Enqueues through `conn` inside a transaction: a rollback leaves nothing,
/// a commit leaves the jobs, claimable.
fn transactional_enqueue<C: JobConnection>(backend: &DatabaseQueue, conn: &mut C) {
    let q = "tx";
    let rolled_back = conn.transaction::<(), diesel::result::Error, _>(|conn| {
        let ids = backend
            .enqueue_in(conn, &[job(q), job(q)])
            .expect("enqueue_in");
        assert_eq!(ids.len(), 2);
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert_eq!(
        backend.len(q).expect("len"),
        0,
        "a rolled-back enqueue stores nothing"
    );

    let ids = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            Ok(backend.enqueue_in(conn, &[job(q)]).expect("enqueue_in"))
        })
        .expect("commit");
    assert_eq!(backend.len(q).expect("len"), 1);
    let claimed = backend
        .claim(q, 10, Duration::from_secs(60))
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, ids[0]);

    // outside any transaction it is a transaction of its own
    let more = backend.enqueue_in(conn, &[job(q)]).expect("enqueue_in");
    assert_eq!(
        backend.job(more[0]).expect("job").expect("stored").state,
        JobState::Pending
    );

    // a command's own jobs, with its options, in the caller's transaction
    let typed = |account, cents| credit::job(account, cents).expect("encodes");
    let rolled_back = conn.transaction::<(), diesel::result::Error, _>(|conn| {
        backend
            .enqueue_in(conn, &[typed(6, 1)])
            .expect("enqueue_in");
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert_eq!(backend.len("tx-typed").expect("len"), 0);
    let ids = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            Ok(backend
                .enqueue_in(conn, &[typed(7, 250), typed(8, -5)])
                .expect("enqueue_in"))
        })
        .expect("commit");
    let stored = backend.job(ids[0]).expect("job").expect("stored");
    assert_eq!(
        (
            stored.command.as_str(),
            stored.queue.as_str(),
            stored.key.as_deref(),
            stored.priority,
            stored.max_attempts
        ),
        (credit::NAME, "tx-typed", Some("7"), 3, 2)
    );
    let args: (u64, i64) = outband::codec::decode(&stored.args).expect("decodes");
    assert_eq!(args, (7, 250));
    assert_eq!(backend.len("tx-typed").expect("len"), 2);
}

/// Two jobs with one ordering key, the first enqueued in a transaction held
/// open while the second is enqueued: the second waits for the first's
/// commit, so no job of the key can be claimed meanwhile, and ids of one key
/// follow commit order, which the claim's "no earlier pending job of the
/// key" relies on. (Without that, a claim that saw only the second job and
/// a claim that saw both could run the two at once.) Then they run one
/// after the other, in order.
#[cfg(feature = "postgres")]
fn same_key_enqueues_follow_commit_order<C: JobConnection>(backend: &DatabaseQueue, conn: &mut C) {
    use std::sync::mpsc;
    let q = "key-race";
    let keyed = || job(q).key("ci-7");
    let lease = Duration::from_secs(60);
    let (inserted_tx, inserted_rx) = mpsc::channel();
    let (commit_tx, commit_rx) = mpsc::channel::<()>();
    let (enqueued_tx, enqueued_rx) = mpsc::channel();
    let (first, early, enqueued) = std::thread::scope(|scope| {
        let holder = scope.spawn(move || {
            conn.transaction::<_, diesel::result::Error, _>(|conn| {
                let ids = backend.enqueue_in(conn, &[keyed()]).expect("enqueue_in");
                inserted_tx.send(()).expect("send");
                commit_rx.recv().expect("told to commit");
                Ok(ids[0])
            })
            .expect("commit")
        });
        inserted_rx.recv().expect("the first job is inserted");
        scope.spawn(move || {
            let id = backend.enqueue(keyed()).expect("enqueue");
            enqueued_tx.send(id).expect("send");
        });
        // The second enqueue may wait for the first transaction; give it
        // the chance to commit first (this only decides which interleaving
        // is tested, not the outcome).
        let enqueued = enqueued_rx.recv_timeout(Duration::from_secs(2)).ok();
        let early = backend.claim(q, 10, lease).expect("claim");
        commit_tx.send(()).expect("send");
        (holder.join().expect("holder"), early, enqueued)
    });
    let second = enqueued
        .or_else(|| enqueued_rx.recv().ok())
        .expect("the second job is enqueued");
    let late = backend.claim(q, 10, lease).expect("claim");
    let ids = |claimed: &[outband::Claimed]| claimed.iter().map(|c| c.job.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&early),
        vec![],
        "job {second} was claimable while job {first} of its key was still being enqueued"
    );
    assert_eq!(ids(&late), vec![first]);
    assert!(second > first, "ids of one key follow commit order");
    let claimed = late.into_iter().next().expect("one claimed");
    backend
        .complete(
            &claimed.lease,
            Outcome::Done {
                result: None,
                duration: Duration::ZERO,
            },
        )
        .expect("complete");
    let next = backend.claim(q, 10, lease).expect("claim");
    let other = if claimed.job.id == first {
        second
    } else {
        first
    };
    assert_eq!(
        next.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![other]
    );
}

/// Consumers are registered under the queue's table prefix only (`other`
/// has another), and one gone for `CONSUMER_FORGET_AFTER` is neither
/// listed nor kept: the next registration deletes its row.
fn consumers_are_rows_of_their_prefix<C: Connection>(
    backend: &DatabaseQueue,
    other: &DatabaseQueue,
    conn: &mut C,
) {
    let info = outband::ConsumerInfo::this_process(["q"], 2, 8);
    backend
        .register_consumer(&info, Duration::from_secs(60))
        .expect("register");
    let listed = backend.consumers().expect("consumers");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].info, info);
    assert!(listed[0].alive);
    assert!(
        other.consumers().expect("consumers").is_empty(),
        "another prefix lists none"
    );

    let table = format!("{}consumers", backend.prefix());
    let long_ago = outband::CONSUMER_FORGET_AFTER + Duration::from_secs(60);
    conn.batch_execute(&format!(
        "UPDATE {table} SET expires_at = expires_at - {} WHERE id = '{}'",
        long_ago.as_micros(),
        info.id
    ))
    .expect("age the registration");
    assert!(
        backend.consumers().expect("consumers").is_empty(),
        "forgotten"
    );
    let fresh = outband::ConsumerInfo::this_process(["q"], 1, 0);
    backend
        .register_consumer(&fresh, Duration::from_secs(60))
        .expect("register");
    let listed = backend.consumers().expect("consumers");
    assert_eq!(listed.len(), 1, "the forgotten row is deleted");
    assert_eq!(listed[0].info, fresh);
    backend.unregister_consumer(&fresh.id).expect("unregister");
}

/// A row no producer could have written is moved to `dead` with the reason
/// when a claim meets it, and the claim still returns the good job.
fn malformed_record_goes_dead<C: Connection>(backend: &DatabaseQueue, conn: &mut C, blob: &str) {
    let q = "malformed";
    let table = format!("{}jobs", backend.prefix());
    conn.batch_execute(&format!(
        "INSERT INTO {table} (command, args, queue, priority, max_attempts, attempt, state, token, run_at, enqueued_at) \
         VALUES ('app::job', {blob}, '{q}', 0, 0, 0, 0, 0, 0, 0)"
    ))
    .expect("insert a bad row");
    let good = backend.enqueue(job(q)).expect("enqueue");
    let claimed = backend
        .claim(q, 10, Duration::from_secs(60))
        .expect("claim goes on");
    assert_eq!(
        claimed.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![good]
    );
    // the row is still malformed, yet it is listed (read leniently) with its
    // reason, so one bad dead letter never hides the others
    let dead = backend
        .dead_jobs(q, 0, 10)
        .expect("a malformed dead record is listed");
    assert_eq!(dead.len(), 1);
    let reason = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(reason.starts_with("malformed record: "), "{reason}");
    let listed = backend
        .jobs(&JobQuery::new(q, JobState::Dead))
        .expect("a malformed dead record is listed by state");
    assert_eq!(listed.jobs, dead);
    let job = backend.job(dead[0].id).expect("read").expect("kept");
    assert_eq!(job.state, JobState::Dead);
    assert!(
        backend.delete_dead(job.id).expect("delete"),
        "it can be deleted"
    );
    let stats = backend.stats(q).expect("stats");
    assert_eq!((stats.dead, stats.running), (0, 1));
}

/// A row whose state code outband does not know, written past the API (a
/// broken migration, a manual fix), is counted as `dead` meanwhile and never
/// claimed; the next recovery step moves it to `dead` with a reason that
/// names its code, counted in the step's `dead`; then it is a dead letter
/// like any other: listed, retried, deleted.
fn unknown_state_rows_end_dead<C: Connection>(backend: &DatabaseQueue, conn: &mut C) {
    let q = "unknown-state";
    let table = format!("{}jobs", backend.prefix());
    let ids = backend
        .enqueue_many(vec![job(q), job(q), job(q), job(q)])
        .expect("enqueue");
    let (nine, negative, failed, good) = (ids[0], ids[1], ids[2], ids[3]);
    for (id, code) in [(nine, 9), (negative, -1)] {
        conn.batch_execute(&format!(
            "UPDATE {table} SET state = {code} WHERE id = {id}"
        ))
        .expect("a state code outband does not know");
    }
    let claimed = backend
        .claim(q, 10, Duration::from_secs(60))
        .expect("claim");
    let claimed_ids: Vec<_> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(claimed_ids, vec![failed, good], "never claimed");
    let outcomes = vec![
        (
            claimed[0].lease.clone(),
            Outcome::Dead { error: "no".into() },
        ),
        (
            claimed[1].lease.clone(),
            Outcome::Done {
                result: None,
                duration: Duration::ZERO,
            },
        ),
    ];
    backend.complete_many(outcomes).expect("complete");
    let counts = |backend: &DatabaseQueue| {
        let stats = backend.stats(q).expect("stats");
        (stats.pending, stats.running, stats.done, stats.dead)
    };
    assert_eq!(counts(backend), (0, 0, 1, 3), "counted as dead meanwhile");
    let listed = backend
        .jobs(&JobQuery::new(q, JobState::Dead))
        .expect("jobs");
    assert_eq!(
        listed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![failed, negative, nine],
        "listed as dead meanwhile, as job() reads them"
    );

    let recovered = backend.recover_expired().expect("recover");
    assert_eq!((recovered.requeued, recovered.dead), (0, 2));
    assert_eq!(counts(backend), (0, 0, 1, 3), "counted once");
    let dead = backend.dead_jobs(q, 0, 10).expect("dead jobs");
    let mut listed: Vec<_> = dead.iter().map(|j| j.id).collect();
    listed.sort_unstable();
    assert_eq!(listed, vec![nine, negative, failed]);
    for (id, code) in [(nine, 9), (negative, -1)] {
        let job = backend.job(id).expect("job").expect("kept");
        assert_eq!(job.state, JobState::Dead);
        assert!(job.finished_at.is_some());
        assert_eq!(
            job.last_error.as_deref(),
            Some(
                format!(
                    "malformed record: state code {code} is not one outband knows \
                     (pending 0, running 1, done 2, dead 3, cancelled 4); set to dead"
                )
                .as_str()
            )
        );
    }
    assert_eq!(
        backend.recover_expired().expect("recover").dead,
        0,
        "moved once"
    );

    assert!(
        backend.retry_dead(nine).expect("retry"),
        "it can be retried"
    );
    let claimed = backend
        .claim(q, 10, Duration::from_secs(60))
        .expect("claim");
    assert_eq!(
        claimed.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![nine]
    );
    assert!(
        backend.delete_dead(negative).expect("delete"),
        "it can be deleted"
    );
    assert!(backend.job(negative).expect("job").is_none());
    assert_eq!(counts(backend), (0, 1, 1, 1));
}

/// A job recorded done moves, in the same transaction, from the jobs table
/// to the finished jobs' table, where `job()` and `stats()` still find it; a
/// dead job stays; a completion under a stale lease changes nothing.
fn finished_jobs_leave_the_jobs_table<C: Connection>(backend: &DatabaseQueue, conn: &mut C) {
    let q = "moved";
    let (jobs, done) = (
        format!("{}jobs", backend.prefix()),
        format!("{}done", backend.prefix()),
    );
    backend.enqueue_many(vec![job(q), job(q)]).expect("enqueue");
    let claimed = backend.claim(q, 2, Duration::from_secs(60)).expect("claim");
    assert_eq!(claimed.len(), 2);
    let (finished, dead) = (&claimed[0], &claimed[1]);
    let outcomes = vec![
        (
            finished.lease.clone(),
            Outcome::Done {
                result: Some(vec![7]),
                duration: Duration::from_millis(3),
            },
        ),
        (dead.lease.clone(), Outcome::Dead { error: "no".into() }),
    ];
    assert_eq!(
        backend.complete_many(outcomes).expect("complete"),
        vec![Completion::Applied, Completion::Applied]
    );
    let stale = backend
        .complete(&finished.lease, Outcome::Release)
        .expect("a stale completion is not an error");
    assert_eq!(stale, Completion::LeaseLost);

    let stats = backend.stats(q).expect("stats");
    assert_eq!((stats.done, stats.dead, stats.pending), (1, 1, 0));
    let id = finished.job.id;
    // not in the jobs table: deleting it there changes nothing
    conn.batch_execute(&format!("DELETE FROM {jobs} WHERE id = {id}"))
        .expect("delete");
    let stored = backend
        .job(id)
        .expect("job")
        .expect("kept in the done table");
    assert_eq!(stored.state, JobState::Done);
    assert_eq!(stored.result.as_deref(), Some(&[7][..]));
    assert_eq!(stored.duration, Some(Duration::from_millis(3)));
    assert_eq!(
        backend
            .job(dead.job.id)
            .expect("job")
            .expect("dead job kept")
            .state,
        JobState::Dead
    );
    conn.batch_execute(&format!("DELETE FROM {done} WHERE id = {id}"))
        .expect("delete");
    assert!(
        backend.job(id).expect("job").is_none(),
        "it was in the done table"
    );
}

/// A running job's cancel request ends it `cancelled` through every way an
/// outcome is recorded (a batch with the next claim, a batch of mixed
/// outcomes, one outcome), where the job would run again: a release keeps
/// its attempt, a retry's delay is not waited out, and its ordering key is
/// handed on at once. Done and dead outcomes stand and forget the request:
/// a retried dead job runs again untold. A purge deletes cancelled and done
/// jobs alike.
fn cancel_requests_end_by_every_way_out(backend: &DatabaseQueue) {
    let q = "cancel-out";
    let lease = Duration::from_secs(60);
    let ids = backend
        .enqueue_many(vec![
            job(q).key("k"),
            job(q).key("k"),
            job(q),
            job(q),
            job(q),
            job(q),
        ])
        .expect("enqueue");
    let claimed = backend.claim(q, 10, lease).expect("claim");
    let claimed_ids: Vec<_> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(
        claimed_ids,
        vec![ids[0], ids[2], ids[3], ids[4], ids[5]],
        "the second job of the key waits"
    );
    let (released, retried, done, dead, last) = (
        &claimed[0],
        &claimed[1],
        &claimed[2],
        &claimed[3],
        &claimed[4],
    );
    for c in &claimed {
        assert_eq!(
            backend.cancel(c.job.id, "stop").expect("cancel"),
            Cancellation::Requested
        );
    }
    assert_eq!(
        backend
            .cancel(released.job.id, "stop again")
            .expect("cancel"),
        Cancellation::Requested
    );
    let (completed, next) = backend
        .complete_and_claim(
            vec![
                (released.lease.clone(), Outcome::Release),
                (
                    retried.lease.clone(),
                    Outcome::Retry {
                        delay: Duration::from_secs(3600),
                        error: "failed".into(),
                    },
                ),
            ],
            q,
            10,
            lease,
        )
        .expect("complete and claim");
    assert_eq!(completed, vec![Completion::Applied, Completion::Applied]);
    assert_eq!(
        next.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![ids[1]],
        "the cancelled job handed its key on"
    );
    let keyed = &next[0];
    for c in [released, retried] {
        let stored = backend.job(c.job.id).expect("job").expect("kept");
        assert_eq!(stored.state, JobState::Cancelled);
        assert_eq!(
            stored.last_error.as_deref(),
            Some("stop"),
            "the first reason"
        );
        assert_eq!(stored.attempt, 1, "a cancelled release keeps its attempt");
        assert!(stored.finished_at.is_some());
    }

    let done_outcome = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    assert_eq!(
        backend
            .complete_many(vec![
                (done.lease.clone(), done_outcome.clone()),
                (dead.lease.clone(), Outcome::Dead { error: "no".into() }),
            ])
            .expect("complete"),
        vec![Completion::Applied, Completion::Applied]
    );
    let state = |id| backend.job(id).expect("job").expect("kept").state;
    assert_eq!(state(done.job.id), JobState::Done);
    assert_eq!(state(dead.job.id), JobState::Dead);
    assert!(backend.retry_dead(dead.job.id).expect("retry dead"));
    let (completed, again) = backend
        .complete_and_claim(vec![(last.lease.clone(), done_outcome)], q, 10, lease)
        .expect("complete and claim");
    assert_eq!(completed, vec![Completion::Applied]);
    assert_eq!(state(last.job.id), JobState::Done);
    assert_eq!(
        again.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![dead.job.id]
    );
    assert!(
        matches!(
            backend
                .heartbeat(&again[0].lease, lease)
                .expect("heartbeat"),
            Heartbeat::Extended(_)
        ),
        "a dead outcome forgot the request"
    );

    assert_eq!(
        backend.cancel(keyed.job.id, "later").expect("cancel"),
        Cancellation::Requested
    );
    assert!(matches!(
        backend.heartbeat(&keyed.lease, lease).expect("heartbeat"),
        Heartbeat::CancelRequested(_)
    ));
    assert_eq!(
        backend
            .complete(
                &keyed.lease,
                Outcome::Retry {
                    delay: Duration::ZERO,
                    error: "failed".into(),
                },
            )
            .expect("complete"),
        Completion::Applied
    );
    assert_eq!(state(keyed.job.id), JobState::Cancelled);
    let stats = backend.stats(q).expect("stats");
    assert_eq!(
        (
            stats.pending,
            stats.running,
            stats.done,
            stats.dead,
            stats.cancelled
        ),
        (0, 1, 2, 0, 3)
    );

    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        backend.purge(Duration::from_millis(1)).expect("purge"),
        5,
        "three cancelled and two done jobs"
    );
    let stats = backend.stats(q).expect("stats");
    assert_eq!((stats.running, stats.done, stats.cancelled), (1, 0, 0));
}

/// Progress survives a batch of done outcomes (PostgreSQL: moved to the
/// done table by the statement that also claims; SQLite and MySQL: marked by
/// one update, then moved) and a dead outcome, where `dead_jobs` lists it;
/// the claim that shares a statement or transaction with the outcomes hands
/// its job over with none.
fn progress_is_kept_by_every_way_out(backend: &DatabaseQueue) {
    let q = "progress-out";
    let lease = Duration::from_secs(60);
    backend
        .enqueue_many((0..4).map(|_| job(q)).collect())
        .expect("enqueue");
    let claimed = backend.claim(q, 4, lease).expect("claim");
    assert_eq!(claimed.len(), 4);
    let reports: Vec<Progress> = (0..4u8)
        .map(|i| Progress::new(f32::from(i + 1) / 8.0, format!("step {i} «é»")))
        .collect();
    for (c, report) in claimed.iter().zip(&reports) {
        assert_eq!(
            backend.progress(&c.lease, report).expect("progress"),
            Completion::Applied
        );
    }
    let (a, b, dead, again) = (&claimed[0], &claimed[1], &claimed[2], &claimed[3]);
    assert_eq!(
        backend
            .complete(&again.lease, Outcome::Release)
            .expect("release"),
        Completion::Applied
    );
    let done = || Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    let (completed, next) = backend
        .complete_and_claim(
            vec![(a.lease.clone(), done()), (b.lease.clone(), done())],
            q,
            1,
            lease,
        )
        .expect("complete and claim");
    assert_eq!(completed, vec![Completion::Applied, Completion::Applied]);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job.id, again.job.id);
    assert_eq!(
        next[0].job.progress, None,
        "the claim hands it over cleared"
    );
    assert_eq!(
        backend
            .job(again.job.id)
            .expect("job")
            .expect("stored")
            .progress,
        None
    );
    for (c, report) in [(a, &reports[0]), (b, &reports[1])] {
        let stored = backend.job(c.job.id).expect("job").expect("stored");
        assert_eq!(stored.state, JobState::Done);
        assert_eq!(stored.progress.as_ref(), Some(report));
    }

    assert_eq!(
        backend
            .complete(&dead.lease, Outcome::Dead { error: "no".into() })
            .expect("dead"),
        Completion::Applied
    );
    let listed = backend.dead_jobs(q, 0, 10).expect("dead jobs");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].progress.as_ref(), Some(&reports[2]));
    assert_eq!(
        backend
            .job(dead.job.id)
            .expect("job")
            .expect("stored")
            .progress,
        Some(reports[2].clone())
    );
}

/// A job's own timeout is stored by every way in (your transaction, the
/// one-statement enqueue, a keyed enqueue, a batch of more rows than one
/// `INSERT` takes) and kept by every way out: a release, a batch of done
/// outcomes with the next claim (PostgreSQL: one statement; SQLite and
/// MySQL: one update, then the move), dead and `dead_jobs`, a dead job's
/// retry, and an expired lease's requeue.
fn timeouts_are_kept_by_every_way_out<C: JobConnection>(backend: &DatabaseQueue, conn: &mut C) {
    let q = "timeout-out";
    let lease = Duration::from_secs(60);
    let ms = Duration::from_millis;
    let within = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            Ok(backend
                .enqueue_in(
                    conn,
                    &[
                        job(q).timeout(ms(1001)),
                        job(q).key("k").timeout(ms(1002)),
                        job(q),
                    ],
                )
                .expect("enqueue_in"))
        })
        .expect("commit");
    let alone = backend.enqueue(job(q).timeout(ms(1003))).expect("enqueue");
    let keyed = backend
        .enqueue(
            job(q)
                .key("other")
                .timeout(Duration::from_micros(1_004_999)),
        )
        .expect("enqueue");
    let expected = [
        (within[0], Some(ms(1001))),
        (within[1], Some(ms(1002))),
        (within[2], None),
        (alone, Some(ms(1003))),
        (keyed, Some(ms(1004))),
    ];
    for (id, timeout) in expected {
        let stored = backend.job(id).expect("job").expect("stored");
        assert_eq!(stored.timeout, timeout, "job {id} as stored");
    }

    let many = "timeout-many";
    let timeout_of = |i: u64| (!i.is_multiple_of(3)).then(|| ms(i));
    backend
        .enqueue_many(
            (1..=501)
                .map(|i| match timeout_of(i) {
                    Some(timeout) => job(many).timeout(timeout),
                    None => job(many),
                })
                .collect(),
        )
        .expect("enqueue_many");
    let claimed = backend.claim(many, 501, lease).expect("claim");
    let timeouts: Vec<_> = claimed.iter().map(|c| c.job.timeout).collect();
    assert_eq!(timeouts, (1..=501).map(timeout_of).collect::<Vec<_>>());

    let claimed = backend.claim(q, 5, lease).expect("claim");
    let timeouts: Vec<_> = claimed.iter().map(|c| (c.job.id, c.job.timeout)).collect();
    assert_eq!(timeouts, expected, "as claimed");
    assert_eq!(
        backend
            .complete(&claimed[0].lease, Outcome::Release)
            .expect("release"),
        Completion::Applied
    );
    let done = || Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    let (completed, next) = backend
        .complete_and_claim(
            vec![
                (claimed[1].lease.clone(), done()),
                (claimed[3].lease.clone(), done()),
            ],
            q,
            1,
            lease,
        )
        .expect("complete and claim");
    assert_eq!(completed, vec![Completion::Applied, Completion::Applied]);
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].job.id, next[0].job.timeout),
        expected[0],
        "released, claimed again"
    );
    for (id, timeout) in [expected[1], expected[3]] {
        let stored = backend.job(id).expect("job").expect("stored");
        assert_eq!((stored.state, stored.timeout), (JobState::Done, timeout));
    }

    for c in [&claimed[2], &claimed[4]] {
        assert_eq!(
            backend
                .complete(&c.lease, Outcome::Dead { error: "no".into() })
                .expect("dead"),
            Completion::Applied
        );
    }
    let mut listed: Vec<_> = backend
        .dead_jobs(q, 0, 10)
        .expect("dead jobs")
        .iter()
        .map(|job| (job.id, job.timeout))
        .collect();
    listed.sort_unstable_by_key(|&(id, _)| id);
    assert_eq!(listed, [expected[2], expected[4]]);

    assert!(backend.retry_dead(keyed).expect("retry dead"));
    let short = backend.claim(q, 1, ms(1)).expect("claim");
    assert_eq!(short.len(), 1);
    assert_eq!((short[0].job.id, short[0].job.timeout), expected[4]);
    std::thread::sleep(ms(20));
    assert_eq!(backend.recover_expired().expect("recover").requeued, 1);
    let stored = backend.job(keyed).expect("job").expect("stored");
    assert_eq!(
        (stored.state, stored.timeout),
        (JobState::Pending, Some(ms(1004)))
    );
}

/// A pause is a row of the database, not a setting of the handle that made
/// it: `again`, a second handle on the same tables (a consumer started
/// later, on another host), sees it and claims nothing, and a flush and a
/// purge keep it. Queue names are told apart byte for byte and listed in
/// byte order, whatever the database's collation. A resume through either
/// handle lets both claim again.
fn pauses_are_kept_in_the_database(backend: &DatabaseQueue, again: &DatabaseQueue) {
    let lease = Duration::from_secs(60);
    for q in ["kept", "Kept", "b"] {
        assert!(backend.pause(q).expect("pause"), "{q}");
    }
    assert!(!again.pause("kept").expect("pause"), "paused already");
    assert_eq!(again.paused().expect("paused"), ["Kept", "b", "kept"]);
    assert!(again.stats("kept").expect("stats").paused);
    assert!(!again.stats("KEPT").expect("stats").paused);

    backend.enqueue(job("kept")).expect("enqueue");
    let other = backend.enqueue(job("KEPT")).expect("enqueue");
    assert!(again.claim("kept", 10, lease).expect("claim").is_empty());
    let claimed = again.claim("KEPT", 10, lease).expect("claim");
    assert_eq!(claimed.len(), 1, "another name, not paused");
    assert_eq!(claimed[0].job.id, other);

    assert_eq!(backend.flush("kept").expect("flush"), 1);
    backend.purge(Duration::ZERO).expect("purge");
    assert!(again.stats("kept").expect("stats").paused, "kept by both");
    let id = backend.enqueue(job("kept")).expect("enqueue");
    assert!(again.claim("kept", 10, lease).expect("claim").is_empty());
    assert!(!again.has_jobs_waiting("kept").expect("waiting"));

    assert!(again.resume("kept").expect("resume"));
    assert!(!backend.resume("kept").expect("resume"), "resumed already");
    assert_eq!(backend.paused().expect("paused"), ["Kept", "b"]);
    assert!(backend.has_jobs_waiting("kept").expect("waiting"));
    let claimed = backend.claim("kept", 10, lease).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, id);
}

/// Every enqueue path stores a job's concurrency limit: a batch, one job,
/// [`DatabaseQueue::enqueue_in`] in the caller's transaction and
/// `enqueue_unique`; the jobs of one key, limited to 1, then run one at a
/// time, each limit counting with the others', while an unlimited job of
/// the queue runs beside them; and the column compares keys whole, so a
/// key that is a prefix of another is a key of its own.
fn limits_are_stored_by_every_enqueue_path<C: JobConnection>(
    backend: &DatabaseQueue,
    conn: &mut C,
) {
    let q = "limited-paths";
    let key = "limited-paths:key";
    let lease = Duration::from_secs(60);
    let limited = |key: &str| job(q).concurrency(Concurrency::new(key, 1));
    let mut ids = backend
        .enqueue_many(vec![limited(key), limited(key)])
        .expect("batch");
    ids.push(backend.enqueue(limited(key)).expect("one"));
    ids.extend(
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            Ok(backend
                .enqueue_in(conn, &[limited(key)])
                .expect("enqueue_in"))
        })
        .expect("commit"),
    );
    let unique = limited(key).unique(Unique::new("limited-paths", UniqueUntil::Finished));
    ids.push(backend.enqueue_unique(unique).expect("unique").id);
    let other = backend
        .enqueue(limited("limited-paths:k"))
        .expect("prefix key");
    let free = backend.enqueue(job(q)).expect("free");

    let mut started = Vec::new();
    for _ in 0..ids.len() {
        let claimed = backend.claim(q, 10, lease).expect("claim");
        let of_key: Vec<_> = claimed.iter().filter(|c| ids.contains(&c.job.id)).collect();
        assert_eq!(of_key.len(), 1, "one job of the key at a time: {claimed:?}");
        started.push(of_key[0].job.id);
        let done = Outcome::Done {
            result: None,
            duration: Duration::from_millis(1),
        };
        let completion = backend.complete(&of_key[0].lease, done).expect("complete");
        assert_eq!(completion, Completion::Applied);
        if started.len() == 1 {
            let rest: Vec<_> = claimed.iter().map(|c| c.job.id).collect();
            assert!(rest.contains(&other), "another key is a slot of its own");
            assert!(rest.contains(&free), "an unlimited job runs beside them");
        }
    }
    assert_eq!(started, ids, "in enqueue order");
    assert!(backend.claim(q, 10, lease).expect("claim").is_empty());
}

/// Every enqueue path stores a job's rate limit, and every read gives it
/// back with the concurrency limit (`job`, a claim, a listing): a batch,
/// one job, [`DatabaseQueue::enqueue_in`] and `enqueue_unique`. At one a
/// minute (a burst of 1), one job of the key starts, the first in claim
/// order, then none; a key that is a prefix of another is a key of its own,
/// and a free job starts beside them. A job whose concurrency key is full
/// takes no turn of its rate key: the next job of that key starts.
fn rates_are_stored_by_every_enqueue_path<C: JobConnection>(backend: &DatabaseQueue, conn: &mut C) {
    let q = format!("rated-paths-{}", common::unique_prefix());
    let key = format!("{q}:key");
    let lease = Duration::from_secs(60);
    let rate = |key: &str| RateLimit::new(key, 1, Duration::from_secs(60));
    let rated = |key: &str| job(&q).rate(rate(key));
    let mut ids = backend
        .enqueue_many(vec![rated(&key), rated(&key)])
        .expect("batch");
    ids.push(backend.enqueue(rated(&key)).expect("one"));
    ids.extend(
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            Ok(backend
                .enqueue_in(conn, &[rated(&key)])
                .expect("enqueue_in"))
        })
        .expect("commit"),
    );
    let unique = rated(&key).unique(Unique::new(q.as_str(), UniqueUntil::Finished));
    ids.push(backend.enqueue_unique(unique).expect("unique").id);
    for &id in &ids {
        let stored = backend.job(id).expect("job").expect("stored");
        assert_eq!(stored.rate, Some(rate(&key)), "{id:?}");
        assert_eq!(stored.concurrency, None);
    }
    let both_key = format!("{q}:both");
    let slot = format!("{q}:slot");
    let both = |n: u8| {
        rated(&both_key)
            .concurrency(Concurrency::new(slot.as_str(), 1))
            .priority(i16::from(n))
    };
    // the higher priority comes first in claim order, and its slot is full
    let holder = backend
        .enqueue(
            job(&q)
                .concurrency(Concurrency::new(slot.as_str(), 1))
                .priority(9),
        )
        .expect("holder");
    let blocked = backend.enqueue(both(2)).expect("blocked");
    let other = backend
        .enqueue(rated(&format!("{q}:k")))
        .expect("prefix key");
    let free = backend.enqueue(job(&q)).expect("free");
    let first = backend.claim(&q, 1, lease).expect("claim");
    assert_eq!(
        first.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![holder]
    );

    let claimed = backend.claim(&q, 10, lease).expect("claim");
    let mut got: Vec<_> = claimed.iter().map(|c| c.job.id).collect();
    got.sort();
    let mut want = vec![ids[0], other, free];
    want.sort();
    assert_eq!(got, want, "the first of the key, another key, a free job");
    let first_of_key = claimed
        .iter()
        .find(|c| c.job.id == ids[0])
        .expect("claimed");
    assert_eq!(first_of_key.job.rate, Some(rate(&key)));
    assert!(
        backend.claim(&q, 10, lease).expect("claim").is_empty(),
        "the key's turn is spent"
    );
    backend.purge(Duration::from_secs(3600)).expect("purge");
    assert!(
        backend.claim(&q, 10, lease).expect("claim").is_empty(),
        "a purge keeps a tat still to come"
    );
    let listed = backend
        .jobs(&JobQuery::new(q.as_str(), JobState::Pending))
        .expect("list");
    let blocked_listed = listed
        .jobs
        .iter()
        .find(|j| j.id == blocked)
        .expect("listed");
    assert_eq!(blocked_listed.rate, Some(rate(&both_key)));
    assert_eq!(
        blocked_listed.concurrency,
        Some(Concurrency::new(slot.as_str(), 1))
    );

    // the slot frees: the blocked job's rate key was never started
    let done = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    backend.complete(&first[0].lease, done).expect("complete");
    let claimed = backend.claim(&q, 10, lease).expect("claim");
    assert_eq!(
        claimed.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![blocked],
        "its turn was not taken while its slot was full"
    );
}

/// Threads racing to claim jobs of one rate key, each from a queue of its
/// own, start exactly its burst between them: each claim reads and writes
/// the key's `tat` under the key's lock.
fn rates_hold_under_racing_claims(backend: &DatabaseQueue) {
    for round in 0..10 {
        race_for_one_rate_key(backend, &format!("rated-race-{round}"));
    }
}

/// One round of [`rates_hold_under_racing_claims`], in queues named after
/// `q`.
fn race_for_one_rate_key(backend: &DatabaseQueue, q: &str) {
    let key = format!("{q}:key");
    // a burst of 3, then one a minute
    let rate = RateLimit::new(key.as_str(), 30, Duration::from_secs(60 * 30));
    let queues: Vec<String> = (0..8).map(|n| format!("{q}-{n}")).collect();
    let jobs = queues
        .iter()
        .flat_map(|queue| (0..3).map(|_| job(queue).rate(rate.clone())))
        .collect();
    backend.enqueue_many(jobs).expect("enqueue");
    let barrier = std::sync::Barrier::new(queues.len());
    let started: usize = std::thread::scope(|scope| {
        let claimers: Vec<_> = queues
            .iter()
            .map(|queue| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut n = 0;
                    for _ in 0..3 {
                        n += backend
                            .claim(queue, 3, Duration::from_secs(60))
                            .expect("claim")
                            .len();
                    }
                    n
                })
            })
            .collect();
        claimers
            .into_iter()
            .map(|c| c.join().expect("claimer"))
            .sum()
    });
    assert_eq!(started, 3, "the burst, whoever claims, in every queue");
}

/// A queue with `keys` concurrency keys and `keys` rate keys whose jobs all
/// wait (each key's slot taken, each key's turn an hour away) claims
/// nothing; a slot freed on the key that sorts first, or a job of a new
/// rate key that sorts first, is claimed at once. The look for limited jobs
/// that may start walks the keys (MySQL: from the greatest down, a bounded
/// number from the client, then the rest in one statement), so the key it
/// reaches last must not be missed, whether the walk ends early or not.
fn limited_jobs_are_found_among_many_keys(backend: &DatabaseQueue, keys: usize) {
    let q = &format!("many-keys-{keys}");
    let lease = Duration::from_secs(60);
    let slot = |n: usize| Concurrency::new(format!("slot:{n:02}"), 1);
    let turn = |n: usize| RateLimit::new(format!("turn:{n:02}"), 1, Duration::from_secs(3600));
    let round = || {
        (0..keys)
            .flat_map(|n| [job(q).concurrency(slot(n)), job(q).rate(turn(n))])
            .collect::<Vec<_>>()
    };
    backend.enqueue_many(round()).expect("enqueue");
    let running = backend.claim(q, 1000, lease).expect("claim");
    assert_eq!(running.len(), 2 * keys, "one job of each key starts");
    backend.enqueue_many(round()).expect("enqueue");
    assert!(
        backend.claim(q, 1000, lease).expect("claim").is_empty(),
        "every key is full or waits for its turn"
    );
    let first = running
        .iter()
        .find(|c| c.job.concurrency == Some(slot(0)))
        .expect("the first key's job");
    let done = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    backend.complete(&first.lease, done).expect("complete");
    let freed = backend.claim(q, 1000, lease).expect("claim");
    assert_eq!(freed.len(), 1, "the freed slot's waiting job starts");
    assert_eq!(freed[0].job.concurrency, Some(slot(0)));
    let fresh = RateLimit::new("turn:", 1, Duration::from_secs(3600));
    backend
        .enqueue(job(q).rate(fresh.clone()))
        .expect("enqueue");
    let started = backend.claim(q, 1000, lease).expect("claim");
    assert_eq!(started.len(), 1, "the new rate key's job starts");
    assert_eq!(started[0].job.rate, Some(fresh));
}

/// A unique key is a row of `<prefix>unique_keys` naming its holder, and
/// every way a job is deleted deletes its row: a purge (of a done job still
/// in its window, or a cancelled one), a flush, the deletion of a dead job.
/// A row whose job is gone, deleted by hand, holds nothing, and the next
/// enqueue of the key takes it over. `enqueue_in` refuses unique jobs and
/// stores nothing. `delete` runs an SQL `DELETE` through `conn` and returns
/// how many rows it deleted.
fn unique_keys_are_rows_of_the_database<C: JobConnection>(
    backend: &DatabaseQueue,
    conn: &mut C,
    delete: fn(&mut C, &str) -> usize,
) {
    let q = "unique-rows";
    let (jobs, keys) = (
        format!("{}jobs", backend.prefix()),
        format!("{}unique_keys", backend.prefix()),
    );
    let lease = Duration::from_secs(60);
    let hour = UniqueUntil::FinishedFor(Duration::from_secs(3600));
    let unique = |key: &str, until| job(q).unique(Unique::new(key, until));
    let enqueue = |key: &str, until| backend.enqueue_unique(unique(key, until)).expect("enqueue");
    let fresh = |enqueued: Enqueued| {
        assert!(!enqueued.duplicate, "{enqueued:?}");
        enqueued.id
    };
    let finish = |outcome: Outcome| {
        let claimed = backend.claim(q, 1, lease).expect("claim");
        assert_eq!(claimed.len(), 1);
        let completion = backend
            .complete(&claimed[0].lease, outcome)
            .expect("complete");
        assert_eq!(completion, Completion::Applied);
        claimed[0].job.id
    };

    let refused = conn.transaction::<_, diesel::result::Error, _>(|conn| {
        Ok(backend.enqueue_in(conn, &[job(q), unique("in", UniqueUntil::Finished)]))
    });
    assert!(
        matches!(refused, Ok(Err(Error::InvalidJob(_)))),
        "{refused:?}"
    );
    assert_eq!(backend.len(q).expect("len"), 0, "nothing was stored");

    // a done job in its window, purged: its row goes with it
    let held = fresh(enqueue("window", hour));
    let done = Outcome::Done {
        result: None,
        duration: Duration::from_millis(1),
    };
    assert_eq!(finish(done.clone()), held);
    assert_eq!(enqueue("window", hour), Enqueued::duplicate_of(held));
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(backend.purge(Duration::ZERO).expect("purge"), 1);
    assert_eq!(
        delete(conn, &format!("DELETE FROM {keys} WHERE job_id = {held}")),
        0,
        "the purge deleted the key's row"
    );
    let again = fresh(enqueue("window", hour));

    // a row whose job was deleted by hand holds nothing
    assert_eq!(
        delete(conn, &format!("DELETE FROM {jobs} WHERE id = {again}")),
        1
    );
    let taken = fresh(enqueue("window", hour));
    assert_ne!(taken, again);
    assert_eq!(enqueue("window", hour), Enqueued::duplicate_of(taken));

    // a flush deletes the rows of the jobs it deletes, and only those
    let other = fresh(enqueue("other", UniqueUntil::Finished));
    assert_eq!(backend.flush(q).expect("flush"), 2);
    for id in [taken, other] {
        assert_eq!(
            delete(conn, &format!("DELETE FROM {keys} WHERE job_id = {id}")),
            0,
            "the flush deleted the key's row"
        );
    }

    // a cancelled job, purged
    let cancelled = fresh(enqueue("cancelled", UniqueUntil::Finished));
    assert_eq!(
        backend.cancel(cancelled, "no").expect("cancel"),
        Cancellation::Cancelled
    );
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(backend.purge(Duration::ZERO).expect("purge"), 1);
    assert_eq!(
        delete(
            conn,
            &format!("DELETE FROM {keys} WHERE job_id = {cancelled}")
        ),
        0
    );

    // a dead job, deleted
    let dead = fresh(enqueue("dead", UniqueUntil::Finished));
    assert_eq!(finish(Outcome::Dead { error: "no".into() }), dead);
    assert!(backend.delete_dead(dead).expect("delete"));
    assert_eq!(
        delete(conn, &format!("DELETE FROM {keys} WHERE job_id = {dead}")),
        0
    );

    // the row of a job that is still there is kept
    let kept = fresh(enqueue("kept", UniqueUntil::Finished));
    assert_eq!(
        delete(conn, &format!("DELETE FROM {keys} WHERE job_id = {kept}")),
        1
    );
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    #[test]
    fn limited_jobs_are_found_among_many_keys_on_sqlite() {
        for keys in [3, 20] {
            let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
            limited_jobs_are_found_among_many_keys(&backend, keys);
        }
    }

    #[test]
    fn unique_keys_are_rows_of_the_database_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-unique-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display())).expect("open");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        unique_keys_are_rows_of_the_database(&backend, &mut conn, |conn, sql| {
            diesel::sql_query(sql).execute(conn).expect(sql)
        });
        drop(backend);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rates_are_stored_by_every_enqueue_path_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-rates-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display())).expect("open");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        rates_are_stored_by_every_enqueue_path(&backend, &mut conn);
        rates_hold_under_racing_claims(&backend);
        drop(backend);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn limits_are_stored_by_every_enqueue_path_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-limits-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display())).expect("open");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        limits_are_stored_by_every_enqueue_path(&backend, &mut conn);
        drop(backend);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn consumers_are_rows_of_their_prefix_on_sqlite() {
        let dir =
            std::env::temp_dir().join(format!("outband-consumers-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let url = format!("sqlite://{}", path.display());
        let backend = DatabaseQueue::open(&url).expect("open");
        let other = DatabaseQueue::builder(&url)
            .prefix("other_")
            .open()
            .expect("open another prefix");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        consumers_are_rows_of_their_prefix(&backend, &other, &mut conn);
        drop((backend, other));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn pauses_are_kept_in_the_database_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-pause-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}", dir.join("q.db").display());
        let backend = DatabaseQueue::open(&url).expect("open");
        let again = DatabaseQueue::open(&url).expect("open again");
        pauses_are_kept_in_the_database(&backend, &again);
        drop((backend, again));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn timeouts_are_kept_by_every_way_out_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-timeout-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display())).expect("open");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        timeouts_are_kept_by_every_way_out(&backend, &mut conn);
        drop(backend);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn progress_is_kept_by_every_way_out_on_sqlite() {
        let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
        progress_is_kept_by_every_way_out(&backend);
    }

    #[test]
    fn cancel_requests_end_by_every_way_out_on_sqlite() {
        let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
        cancel_requests_end_by_every_way_out(&backend);
    }

    #[test]
    fn transactional_enqueue_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-tx-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display())).expect("open");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        transactional_enqueue(&backend, &mut conn);
        malformed_record_goes_dead(&backend, &mut conn, "X'01'");
        finished_jobs_leave_the_jobs_table(&backend, &mut conn);
        drop(backend);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unknown_state_rows_end_dead_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("outband-state-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display())).expect("open");
        let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("conn");
        unknown_state_rows_end_dead(&backend, &mut conn);
        drop(backend);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn opened_by_url_through_outband() {
        let backend = outband::open("sqlite://:memory:").expect("outband::open finds sqlite://");
        let id = backend.enqueue(job("by-url")).expect("enqueue");
        assert_eq!(
            backend.job(id).expect("job").expect("stored").queue,
            "by-url"
        );
    }

    #[test]
    fn bad_urls_and_prefixes_are_config_errors() {
        for url in ["sqlite://", "nonsense", "ftp://x/y"] {
            assert!(
                matches!(DatabaseQueue::open(url), Err(Error::Config(_))),
                "{url}"
            );
        }
        for prefix in ["1a", "a-b", "x; DROP TABLE y; --"] {
            let opened = DatabaseQueue::builder("sqlite::memory:")
                .prefix(prefix)
                .open();
            assert!(matches!(opened, Err(Error::Config(_))), "{prefix}");
        }
    }

    #[test]
    fn explicit_migration() {
        let backend = DatabaseQueue::builder("sqlite::memory:")
            .run_migrations(false)
            .open()
            .expect("open");
        assert!(backend.len("q").is_err(), "no tables before migrating");
        backend.migrate().expect("migrate");
        backend.migrate().expect("migrating twice does nothing");
        assert_eq!(backend.len("q").expect("len"), 0);
    }

    /// A web server and a consumer started at once on a fresh file (as in
    /// `examples/web-app`) both find the migrations pending; each open has
    /// its own pool, as separate processes do.
    #[test]
    fn concurrent_first_opens_of_one_file_all_succeed() {
        for round in 0..10 {
            let dir =
                std::env::temp_dir().join(format!("outband-race-{}", common::unique_prefix()));
            std::fs::create_dir_all(&dir).expect("dir");
            let url = format!("sqlite://{}", dir.join("q.db").display());
            let start = std::sync::Barrier::new(16);
            std::thread::scope(|scope| {
                let opens: Vec<_> = (0..16)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            DatabaseQueue::open(&url).map(|queue| queue.len("q"))
                        })
                    })
                    .collect();
                for open in opens {
                    let len = open.join().expect("no panic");
                    assert!(
                        matches!(len, Ok(Ok(0))),
                        "round {round}: every open migrates or finds it done: {len:?}"
                    );
                }
            });
            std::fs::remove_dir_all(&dir).ok();
        }
    }

    #[test]
    fn finished_jobs_are_kept_for_the_retention_period() {
        let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
        assert_eq!(backend.retention(), outband_diesel::DEFAULT_RETENTION);
        backend.enqueue(job("kept")).expect("enqueue");
        let claimed = backend
            .claim("kept", 1, Duration::from_secs(60))
            .expect("claim");
        let done = Outcome::Done {
            result: None,
            duration: Duration::from_millis(3),
        };
        backend.complete(&claimed[0].lease, done).expect("complete");
        assert_eq!(
            backend.purge_finished().expect("purge"),
            0,
            "within the retention"
        );
        assert_eq!(backend.stats("kept").expect("stats").done, 1);

        let short = DatabaseQueue::builder("sqlite::memory:")
            .retention(Duration::ZERO)
            .open()
            .expect("open");
        short.enqueue(job("gone")).expect("enqueue");
        let claimed = short
            .claim("gone", 1, Duration::from_secs(60))
            .expect("claim");
        let done = Outcome::Done {
            result: None,
            duration: Duration::from_millis(3),
        };
        short.complete(&claimed[0].lease, done).expect("complete");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(short.purge_finished().expect("purge"), 1);
    }

    #[test]
    fn an_oversized_payload_is_refused_at_enqueue() {
        let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
        let big = NewJob::new("app::job", vec![0; outband::codec::max_payload() + 1]);
        assert!(backend.enqueue(big).is_err());
        assert_eq!(backend.len("default").expect("len"), 0);
    }
}

/// A second handle on the tables of `backend`, with a pool of its own, that
/// leaves them in place when it is dropped.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn same_tables(url: &str, backend: &DatabaseQueue) -> DatabaseQueue {
    DatabaseQueue::builder(url)
        .prefix(backend.prefix())
        .run_migrations(false)
        .open()
        .expect("open again")
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    #[test]
    fn limited_jobs_are_found_among_many_keys_on_postgres() {
        for keys in [3, 20] {
            let Some(queue) = common::server_queue(&common::pg_url()) else {
                return;
            };
            limited_jobs_are_found_among_many_keys(&queue, keys);
        }
    }
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn unique_keys_are_rows_of_the_database_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        unique_keys_are_rows_of_the_database(&queue, &mut conn, |conn, sql| {
            diesel::sql_query(sql).execute(conn).expect(sql)
        });
    }

    #[test]
    fn rates_are_stored_by_every_enqueue_path_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        rates_are_stored_by_every_enqueue_path(&queue, &mut conn);
    }

    #[test]
    fn rates_hold_under_racing_claims_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        rates_hold_under_racing_claims(&queue);
    }

    #[test]
    fn limits_are_stored_by_every_enqueue_path_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        limits_are_stored_by_every_enqueue_path(&queue, &mut conn);
    }

    /// Blocks in `wait` on a queue whose ready job waits for a slot of its
    /// key, while another handle finishes the job holding the slot: the
    /// trigger on the jobs table notifies the channel the waiter listens on.
    #[test]
    fn a_freed_slot_wakes_a_waiting_consumer() {
        let Some(backend) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let other = same_tables(&common::pg_url(), &backend);
        let backend = Arc::new(backend);
        let q = "slot";
        let queues = vec![q.to_owned()];
        let limited = || job(q).concurrency(Concurrency::new("slot:key", 1));
        backend.enqueue(limited()).expect("enqueue");
        let waiting = backend.enqueue(limited()).expect("enqueue");
        let running = backend
            .claim(q, 10, Duration::from_secs(60))
            .expect("claim");
        assert_eq!(running.len(), 1);
        // a first wait sets up the listening connection
        backend.wait(&queues, Duration::ZERO).expect("wait");
        let waited = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let start = Instant::now();
                backend
                    .wait(&queues, Duration::from_secs(60))
                    .expect("wait");
                start.elapsed()
            });
            std::thread::sleep(Duration::from_millis(300));
            assert!(!waiter.is_finished(), "the job over its limit woke it");
            let done = Outcome::Done {
                result: None,
                duration: Duration::from_millis(1),
            };
            let completion = other.complete(&running[0].lease, done).expect("complete");
            assert_eq!(completion, Completion::Applied);
            waiter.join().expect("waiter")
        });
        assert!(
            waited < Duration::from_secs(60),
            "woken by the freed slot, not the timeout"
        );
        let claimed = backend
            .claim(q, 10, Duration::from_secs(60))
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].job.id, waiting);
    }

    #[test]
    fn consumers_are_rows_of_their_prefix_on_postgres() {
        let (Some(queue), Some(other)) = (
            common::server_queue(&common::pg_url()),
            common::server_queue(&common::pg_url()),
        ) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        consumers_are_rows_of_their_prefix(&queue, &other, &mut conn);
    }

    #[test]
    fn pauses_are_kept_in_the_database_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let again = same_tables(&common::pg_url(), &queue);
        pauses_are_kept_in_the_database(&queue, &again);
    }

    /// Blocks in `wait` on a paused queue with a ready job, with a long
    /// timeout, while another handle resumes the queue: the trigger on the
    /// paused table notifies the channel the waiter listens on.
    #[test]
    fn a_resume_wakes_a_waiting_consumer() {
        let Some(backend) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let other = same_tables(&common::pg_url(), &backend);
        let backend = Arc::new(backend);
        let queues = vec!["resumed".to_owned()];
        assert!(backend.pause("resumed").expect("pause"));
        backend.enqueue(job("resumed")).expect("enqueue");
        // a first wait sets up the listening connection
        backend.wait(&queues, Duration::ZERO).expect("wait");
        let waited = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let start = Instant::now();
                backend
                    .wait(&queues, Duration::from_secs(60))
                    .expect("wait");
                start.elapsed()
            });
            std::thread::sleep(Duration::from_millis(300));
            assert!(!waiter.is_finished(), "the paused queue's job woke it");
            assert!(other.resume("resumed").expect("resume"));
            waiter.join().expect("waiter")
        });
        assert!(
            waited < Duration::from_secs(60),
            "woken by the resume, not the timeout"
        );
    }

    #[test]
    fn transactional_enqueue_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        transactional_enqueue(&queue, &mut conn);
        malformed_record_goes_dead(&queue, &mut conn, "'\\x01'::bytea");
        finished_jobs_leave_the_jobs_table(&queue, &mut conn);
    }

    #[test]
    fn timeouts_are_kept_by_every_way_out_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        timeouts_are_kept_by_every_way_out(&queue, &mut conn);
    }

    #[test]
    fn progress_is_kept_by_every_way_out_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        progress_is_kept_by_every_way_out(&queue);
    }

    #[test]
    fn cancel_requests_end_by_every_way_out_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        cancel_requests_end_by_every_way_out(&queue);
    }

    #[test]
    fn unknown_state_rows_end_dead_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        unknown_state_rows_end_dead(&queue, &mut conn);
    }

    #[test]
    fn same_key_enqueues_follow_commit_order_on_postgres() {
        let Some(queue) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let mut conn = PgConnection::establish(&common::pg_url()).expect("conn");
        same_key_enqueues_follow_commit_order(&queue, &mut conn);
    }

    #[test]
    fn an_unreachable_server_is_unavailable_at_once() {
        let opened = DatabaseQueue::open("postgres://postgres@127.0.0.1:1/test");
        assert!(matches!(opened, Err(Error::Unavailable(_))), "{opened:?}");
    }

    /// Blocks in `wait` with a long timeout while another thread enqueues.
    #[test]
    fn an_enqueue_wakes_a_waiting_consumer() {
        let Some(backend) = common::server_queue(&common::pg_url()) else {
            return;
        };
        let backend = Arc::new(backend);
        let queues = vec!["wake".to_owned()];
        // a first wait sets up the listening connection
        backend.wait(&queues, Duration::ZERO).expect("wait");
        let waited = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let start = Instant::now();
                backend
                    .wait(&queues, Duration::from_secs(60))
                    .expect("wait");
                start.elapsed()
            });
            std::thread::sleep(Duration::from_millis(200));
            backend.enqueue(job("wake")).expect("enqueue");
            waiter.join().expect("waiter")
        });
        assert!(
            waited < Duration::from_secs(60),
            "woken by the enqueue, not the timeout"
        );
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    #[test]
    fn limited_jobs_are_found_among_many_keys_on_mysql() {
        for keys in [3, 20] {
            let Some(queue) = common::server_queue(&common::mysql_url()) else {
                return;
            };
            limited_jobs_are_found_among_many_keys(&queue, keys);
        }
    }

    #[test]
    fn unique_keys_are_rows_of_the_database_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        unique_keys_are_rows_of_the_database(&queue, &mut conn, |conn, sql| {
            diesel::sql_query(sql).execute(conn).expect(sql)
        });
    }

    #[test]
    fn rates_are_stored_by_every_enqueue_path_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        rates_are_stored_by_every_enqueue_path(&queue, &mut conn);
    }

    #[test]
    fn rates_hold_under_racing_claims_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        rates_hold_under_racing_claims(&queue);
    }

    #[test]
    fn limits_are_stored_by_every_enqueue_path_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        limits_are_stored_by_every_enqueue_path(&queue, &mut conn);
    }

    #[test]
    fn consumers_are_rows_of_their_prefix_on_mysql() {
        let (Some(queue), Some(other)) = (
            common::server_queue(&common::mysql_url()),
            common::server_queue(&common::mysql_url()),
        ) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        consumers_are_rows_of_their_prefix(&queue, &other, &mut conn);
    }

    #[test]
    fn pauses_are_kept_in_the_database_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let again = same_tables(&common::mysql_url(), &queue);
        pauses_are_kept_in_the_database(&queue, &again);
    }

    /// A name longer than the column is refused, not cut to the column's
    /// length, which would pause another queue.
    #[test]
    fn a_name_too_long_for_mysql_pauses_nothing() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let long = "q".repeat(300);
        assert!(queue.pause(&long).is_err());
        assert!(queue.paused().expect("paused").is_empty());
    }

    #[test]
    fn transactional_enqueue_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        transactional_enqueue(&queue, &mut conn);
        malformed_record_goes_dead(&queue, &mut conn, "X'01'");
        finished_jobs_leave_the_jobs_table(&queue, &mut conn);
    }

    #[test]
    fn timeouts_are_kept_by_every_way_out_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        timeouts_are_kept_by_every_way_out(&queue, &mut conn);
    }

    #[test]
    fn progress_is_kept_by_every_way_out_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        progress_is_kept_by_every_way_out(&queue);
    }

    #[test]
    fn cancel_requests_end_by_every_way_out_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        cancel_requests_end_by_every_way_out(&queue);
    }

    #[test]
    fn unknown_state_rows_end_dead_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        unknown_state_rows_end_dead(&queue, &mut conn);
    }

    #[test]
    fn same_key_enqueues_follow_commit_order_on_mysql() {
        let Some(queue) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let mut conn = MysqlConnection::establish(&common::mysql_url()).expect("conn");
        same_key_enqueues_follow_commit_order(&queue, &mut conn);
    }
}
