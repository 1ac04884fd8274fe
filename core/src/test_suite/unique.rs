//! Unique jobs: [`BaseQueue::enqueue_unique`] stores a job only while no
//! job holding its key is in the key's scope, and racing producers store
//! one job between them.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::{LEASE, claim_one, done, echo_job, state_of, unique_queue};
use crate::{
    BaseQueue, Cancellation, Completion, Enqueued, Error, JobState, NewJob, Outcome, Unique,
    UniqueUntil,
};

fn unique_job(queue: &str, value: u64, key: &str, until: UniqueUntil) -> NewJob {
    echo_job(queue, value).unique(Unique::new(key, until))
}

fn fresh(enqueued: Enqueued) -> crate::JobId {
    assert!(!enqueued.duplicate, "{enqueued:?} is a duplicate");
    enqueued.id
}

/// Each scope holds its key while its states say so: `Finished` through
/// `running`, `Started` only while `pending`, `FinishedFor` past `done` for
/// its window; `dead` and `cancelled` jobs give their key up; a duplicate
/// stores nothing and names the holder; keys are global across queues;
/// `enqueue` gives the holder's id, `enqueue_many` refuses unique jobs, and
/// an empty key is invalid.
pub fn unique_keys_hold_while_in_scope(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("unique");
    let key = |name: &str| format!("{q}:{name}");
    let enqueue = |value, name: &str, until| {
        backend
            .enqueue_unique(unique_job(&q, value, &key(name), until))
            .expect("enqueue_unique")
    };

    // until finished: held while pending and running, free once done
    let first = fresh(enqueue(1, "finished", UniqueUntil::Finished));
    assert_eq!(
        enqueue(2, "finished", UniqueUntil::Finished),
        Enqueued::duplicate_of(first)
    );
    assert_eq!(
        backend.len(&q).expect("len"),
        1,
        "a duplicate stores nothing"
    );
    let elsewhere = unique_queue("unique-elsewhere");
    let across = backend
        .enqueue_unique(unique_job(
            &elsewhere,
            3,
            &key("finished"),
            UniqueUntil::Finished,
        ))
        .expect("enqueue_unique");
    assert_eq!(across, Enqueued::duplicate_of(first), "keys are global");
    assert_eq!(backend.len(&elsewhere).expect("len"), 0);
    assert_eq!(
        backend
            .enqueue(unique_job(&q, 4, &key("finished"), UniqueUntil::Finished))
            .expect("enqueue"),
        first,
        "enqueue gives the holder's id"
    );
    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(running.job.id, first);
    assert!(enqueue(5, "finished", UniqueUntil::Finished).duplicate);
    done(&**backend, &running);
    let second = fresh(enqueue(6, "finished", UniqueUntil::Finished));
    assert_ne!(second, first);
    assert_eq!(state_of(&**backend, second), JobState::Pending);
    let other = fresh(enqueue(7, "another", UniqueUntil::Finished));
    assert_ne!(other, second, "another key is another job");
    assert_eq!(
        backend.cancel(second, "made way").expect("cancel"),
        Cancellation::Cancelled
    );
    assert_eq!(
        backend.cancel(other, "made way").expect("cancel"),
        Cancellation::Cancelled
    );
    let third = fresh(enqueue(8, "finished", UniqueUntil::Finished));
    assert_ne!(third, second, "a cancelled job gives its key up");

    // a dead job gives its key up
    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(running.job.id, third);
    let dead = Outcome::Dead {
        error: "no luck".into(),
    };
    assert_eq!(
        backend.complete(&running.lease, dead).expect("complete"),
        Completion::Applied
    );
    let fourth = fresh(enqueue(9, "finished", UniqueUntil::Finished));
    assert_eq!(
        backend.cancel(fourth, "made way").expect("cancel"),
        Cancellation::Cancelled
    );

    // until started: free once the job runs
    let pending = fresh(enqueue(10, "started", UniqueUntil::Started));
    assert!(enqueue(11, "started", UniqueUntil::Started).duplicate);
    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(running.job.id, pending);
    let next = fresh(enqueue(12, "started", UniqueUntil::Started));
    assert!(enqueue(13, "started", UniqueUntil::Started).duplicate);
    done(&**backend, &running);
    assert_eq!(
        backend.cancel(next, "made way").expect("cancel"),
        Cancellation::Cancelled
    );

    // for a window after done
    let hour = UniqueUntil::FinishedFor(Duration::from_secs(3600));
    let held = fresh(enqueue(14, "window", hour));
    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(running.job.id, held);
    done(&**backend, &running);
    assert_eq!(
        enqueue(15, "window", hour),
        Enqueued::duplicate_of(held),
        "a done job holds its key for the window"
    );
    let short = UniqueUntil::FinishedFor(Duration::from_millis(300));
    let held = fresh(enqueue(16, "short", short));
    let running = claim_one(&**backend, &q, LEASE).expect("claimed");
    done(&**backend, &running);
    assert!(enqueue(17, "short", short).duplicate);
    std::thread::sleep(Duration::from_millis(600));
    assert_ne!(
        fresh(enqueue(18, "short", short)),
        held,
        "the key is free once the window passed"
    );

    // a job without a key is just stored; batches refuse unique jobs
    assert!(
        !backend
            .enqueue_unique(echo_job(&q, 19))
            .expect("enqueue")
            .duplicate
    );
    let before = backend.len(&q).expect("len");
    let batch = vec![
        echo_job(&q, 20),
        unique_job(&q, 21, &key("batch"), UniqueUntil::Finished),
    ];
    assert!(matches!(
        backend.enqueue_many(batch),
        Err(Error::InvalidJob(_))
    ));
    assert_eq!(backend.len(&q).expect("len"), before, "nothing was stored");
    assert!(matches!(
        backend.enqueue_unique(unique_job(&q, 22, "", UniqueUntil::Finished)),
        Err(Error::InvalidJob(_))
    ));
}

/// Eight threads racing the same unique enqueue store exactly one job, and
/// all eight are given its id.
pub fn racing_unique_enqueues_store_one_job(backend: &Arc<dyn BaseQueue>) {
    const THREADS: usize = 8;
    let q = unique_queue("unique-race");
    for round in 0..5u64 {
        let key = format!("{q}:{round}");
        let start = Arc::new(Barrier::new(THREADS));
        let racers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (backend, start, job) = (
                    Arc::clone(backend),
                    Arc::clone(&start),
                    unique_job(&q, round, &key, UniqueUntil::Finished),
                );
                std::thread::spawn(move || {
                    start.wait();
                    backend.enqueue_unique(job).expect("enqueue_unique")
                })
            })
            .collect();
        let results: Vec<Enqueued> = racers
            .into_iter()
            .map(|racer| racer.join().expect("racer"))
            .collect();
        let stored = results.iter().filter(|e| !e.duplicate).count();
        assert_eq!(stored, 1, "round {round}: {results:?}");
        assert!(
            results.iter().all(|e| e.id == results[0].id),
            "round {round}: every racer names the one job: {results:?}"
        );
    }
    assert_eq!(backend.len(&q).expect("len"), 5);
}
