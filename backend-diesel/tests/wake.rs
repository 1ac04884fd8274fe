//! Waking an idle consumer on SQLite and MariaDB/MySQL, which have no
//! `LISTEN`: each waiter waits with a 10 s timeout, and returning well
//! before it means the commit woke it. A commit from another process wakes
//! a SQLite waiter through the watch of the file; a MySQL waiter finds it
//! by its short poll; an enqueue in the waiter's own process wakes it
//! directly on both.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, NewJob};
use outband_diesel::DatabaseQueue;

/// The environment variable that makes [`producer_process`] enqueue: the
/// URL to enqueue on.
const PRODUCER: &str = "OUTBAND_WAKE_TEST_PRODUCER";

/// How long each waiter is willing to wait.
const TIMEOUT: Duration = Duration::from_secs(10);

fn job(queue: &str) -> NewJob {
    NewJob::new(
        "app::job",
        outband::codec::encode(&(1u64,)).expect("encodes"),
    )
    .queue(queue)
}

/// Waits on `queue` of `backend` on a thread of its own while `produce`
/// runs, and returns how long the wait took. The waiter's first wait, with
/// no timeout, comes before: the one that finds no job waits.
fn wait_while(backend: &DatabaseQueue, queue: &str, produce: impl FnOnce()) -> Duration {
    let backend = Arc::new(backend.clone());
    let queues = vec![queue.to_owned()];
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            backend.wait(&queues, Duration::ZERO).expect("first wait");
            let start = Instant::now();
            backend.wait(&queues, TIMEOUT).expect("wait");
            start.elapsed()
        });
        // give the waiter time to block, so that the commit wakes it
        std::thread::sleep(Duration::from_millis(200));
        produce();
        waiter.join().expect("waiter")
    })
}

/// Not a test of its own: the producer process that the cross-process tests
/// run, this test binary again, with [`PRODUCER`] set. Without it, nothing.
#[test]
fn producer_process() {
    let Ok(url) = std::env::var(PRODUCER) else {
        return;
    };
    let backend = DatabaseQueue::open(&url).expect("open in the producer process");
    backend.enqueue(job("wake")).expect("enqueue");
}

/// Runs [`producer_process`] in a process of its own to enqueue on `url`.
fn enqueue_from_another_process(url: &str) {
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["producer_process", "--exact", "--quiet", "--test-threads=1"])
        .env(PRODUCER, url)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run the producer process");
    assert!(status.success(), "producer process: {status}");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    fn file_url() -> String {
        let dir = std::env::temp_dir().join(format!("outband-wake-{}", common::unique_prefix()));
        std::fs::create_dir_all(&dir).expect("dir");
        format!("sqlite://{}", dir.join("q.db").display())
    }

    #[test]
    fn a_commit_from_another_process_wakes_a_sqlite_waiter() {
        let url = file_url();
        let backend = DatabaseQueue::open(&url).expect("open");
        let waited = wait_while(&backend, "wake", || enqueue_from_another_process(&url));
        assert!(waited < TIMEOUT, "woken by the commit, waited {waited:?}");
        assert_eq!(backend.len("wake").expect("len"), 1);
    }

    #[test]
    fn an_enqueue_through_another_queue_on_the_file_wakes_a_sqlite_waiter() {
        let url = file_url();
        let backend = DatabaseQueue::open(&url).expect("open");
        let other = DatabaseQueue::open(&url).expect("open again");
        let waited = wait_while(&backend, "wake", || {
            other.enqueue(job("wake")).expect("enqueue");
        });
        assert!(waited < TIMEOUT, "woken by the enqueue, waited {waited:?}");
    }

    #[test]
    fn a_resume_wakes_a_waiter_in_memory() {
        let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
        assert!(backend.pause("wake").expect("pause"));
        backend.enqueue(job("wake")).expect("enqueue");
        let waited = wait_while(&backend, "wake", || {
            assert!(backend.resume("wake").expect("resume"), "paused, resumed");
        });
        assert!(waited < TIMEOUT, "woken by the resume, waited {waited:?}");
    }

    #[test]
    fn a_retried_dead_job_wakes_a_waiter_in_memory() {
        let backend = DatabaseQueue::open("sqlite::memory:").expect("open");
        let id = backend
            .enqueue(job("wake").max_attempts(1))
            .expect("enqueue");
        let claimed = backend
            .claim("wake", 1, Duration::from_secs(30))
            .expect("claim");
        backend
            .complete(
                &claimed[0].lease,
                outband::Outcome::Dead {
                    error: "no".to_owned(),
                },
            )
            .expect("complete");
        let waited = wait_while(&backend, "wake", || {
            assert!(backend.retry_dead(id).expect("retry"), "dead, retried");
        });
        assert!(waited < TIMEOUT, "woken by the retry, waited {waited:?}");
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    /// A second queue on the tables of `backend`, as another part of the
    /// consumer's program would open it.
    fn same_tables(backend: &DatabaseQueue) -> DatabaseQueue {
        DatabaseQueue::builder(common::mysql_url())
            .prefix(backend.prefix())
            .run_migrations(false)
            .open()
            .expect("open again")
    }

    #[test]
    fn an_enqueue_in_the_same_process_wakes_a_mysql_waiter() {
        let Some(backend) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let other = same_tables(&backend);
        let waited = wait_while(&backend, "wake", || {
            other.enqueue(job("wake")).expect("enqueue");
        });
        assert!(waited < TIMEOUT, "woken by the enqueue, waited {waited:?}");
    }

    #[test]
    fn a_commit_from_another_process_reaches_a_mysql_waiter_by_its_poll() {
        let Some(backend) = common::server_queue(&common::mysql_url()) else {
            return;
        };
        let url = outband_testkit::with_param(&common::mysql_url(), "prefix", backend.prefix());
        let waited = wait_while(&backend, "wake", || enqueue_from_another_process(&url));
        assert!(waited < TIMEOUT, "found by the poll, waited {waited:?}");
        assert_eq!(backend.len("wake").expect("len"), 1);
    }
}
