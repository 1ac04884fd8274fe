//! `queues()` on every database that is enabled: every queue holding a job
//! in either table, pending, running, dead or done, each once, sorted, and a
//! queue gone once it holds no job.

mod common;

use std::time::Duration;

use outband::{BaseQueue, NewJob, Outcome};

const LEASE: Duration = Duration::from_secs(60);

fn job(queue: &str) -> NewJob {
    NewJob::new(
        "app::job",
        outband::codec::encode(&(1u64,)).expect("encodes"),
    )
    .queue(queue)
}

/// Claims one job of `queue` and ends it with `outcome`.
fn finish(backend: &dyn BaseQueue, queue: &str, outcome: Outcome) {
    let claimed = backend.claim(queue, 1, LEASE).expect("claim");
    let lease = &claimed.first().expect("a job to claim").lease;
    backend.complete(lease, outcome).expect("complete");
}

fn names(backend: &dyn BaseQueue) -> Vec<String> {
    backend.queues().expect("queues")
}

fn queues_of_both_tables(backend: &dyn BaseQueue) {
    assert!(names(backend).is_empty(), "no job, no queue");

    let done = || Outcome::Done {
        result: None,
        duration: Duration::from_millis(5),
    };
    // enqueued out of order, so that the order is the statement's
    for queue in [
        "echo", "echo", "alpha", "delta", "charlie", "bravo", "bravo",
    ] {
        backend.enqueue(job(queue)).expect("enqueue");
    }
    // alpha: only in the done table; bravo: in both; charlie: running;
    // delta: dead; echo: pending
    finish(backend, "alpha", done());
    finish(backend, "bravo", done());
    backend.claim("charlie", 1, LEASE).expect("claim");
    finish(
        backend,
        "delta",
        Outcome::Dead {
            error: "failed".to_owned(),
        },
    );
    assert_eq!(backend.stats("alpha").expect("stats").done, 1);
    assert_eq!(backend.stats("alpha").expect("stats").pending, 0);
    assert_eq!(
        names(backend),
        ["alpha", "bravo", "charlie", "delta", "echo"]
    );

    // a queue whose only jobs are flushed holds none
    assert_eq!(backend.flush("echo").expect("flush"), 2);
    assert_eq!(names(backend), ["alpha", "bravo", "charlie", "delta"]);
    // many queues, each a probe of its own, between the others
    for n in 0..30 {
        backend.enqueue(job(&format!("b{n:02}"))).expect("enqueue");
    }
    let mut expected: Vec<String> = ["alpha", "bravo", "charlie", "delta"]
        .iter()
        .map(|name| (*name).to_owned())
        .chain((0..30).map(|n| format!("b{n:02}")))
        .collect();
    expected.sort();
    assert_eq!(names(backend), expected);
}

#[cfg(feature = "sqlite")]
#[test]
fn queues_of_both_tables_on_sqlite() {
    queues_of_both_tables(&common::sqlite_file_queue());
}

#[cfg(feature = "postgres")]
#[test]
fn queues_of_both_tables_on_postgres() {
    if let Some(queue) = common::server_queue(&common::pg_url()) {
        queues_of_both_tables(&queue);
    }
}

#[cfg(feature = "mysql")]
#[test]
fn queues_of_both_tables_on_mysql() {
    if let Some(queue) = common::server_queue(&common::mysql_url()) {
        queues_of_both_tables(&queue);
    }
}
