//! What the database tests share: server URLs, skipping, per-test isolation.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

use outband::Error;
use outband_diesel::DatabaseQueue;

/// A table prefix no other test of any run uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{:x}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand_u16()
    )
}

fn fastrand_u16() -> u16 {
    // no extra dependency: the clock's nanoseconds are random enough here
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or_default()
}

/// Whether a missing server fails the test (`OUTBAND_REQUIRE_SERVERS=1`, as CI sets).
pub fn servers_required() -> bool {
    std::env::var("OUTBAND_REQUIRE_SERVERS").is_ok_and(|v| v == "1" || v == "true")
}

/// `PG_DATABASE_URL`, or the local default of `.env.sample`.
pub fn pg_url() -> String {
    std::env::var("PG_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `MYSQL_DATABASE_URL`, or the local default of `.env.sample`.
pub fn mysql_url() -> String {
    std::env::var("MYSQL_DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// A queue on `url` with tables of its own, dropped with it; `None` (after a
/// notice) when the server is unreachable and servers are not required.
pub fn server_queue(url: &str) -> Option<DatabaseQueue> {
    match DatabaseQueue::builder(url)
        .prefix(unique_prefix())
        .temporary(true)
        .open()
    {
        Ok(queue) => Some(queue),
        Err(error @ Error::Unavailable(_)) if !servers_required() => {
            eprintln!(
                "notice: skipped, {url} is unreachable ({error}); set OUTBAND_REQUIRE_SERVERS=1 to fail instead"
            );
            None
        }
        Err(error) => panic!("cannot open {url}: {error}"),
    }
}

/// A SQLite queue in a new file of its own.
pub fn sqlite_file_queue() -> DatabaseQueue {
    let dir = std::env::temp_dir().join(format!("outband-diesel-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("{}.db", unique_prefix()));
    DatabaseQueue::builder(format!("sqlite://{}", file.display()))
        .temporary(true)
        .open()
        .expect("open sqlite file")
}

/// One `#[test]` per conformance case on the queues `$factory` makes
/// (`Option<DatabaseQueue>`: `None` skips), plus a check that no case of
/// `outband::test_suite::CASES` is missing.
#[macro_export]
macro_rules! server_conformance {
    ($factory:expr) => {
        $crate::server_conformance! {
            ($factory)
            fifo_order priority_order batch_claim_order no_double_claim enqueue_many_all_or_nothing
            lease_expiry_and_recovery heartbeat_extends_and_fences release_does_not_count_attempt
            retry_backoff_then_dead ordering_key_exclusion_and_order scheduled_run_at
            cancel_flush_len_stats dead_letter_list_retry_delete purge_done_only
            undecodable_arguments_dead_at_once unknown_command_dead_after_attempts
            panicking_command_retried_then_dead results_are_stored job_timings claim_tick_once
        }
    };
    (($factory:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let Some(queue) = $factory else { return };
                let queue: ::std::sync::Arc<dyn ::outband::BaseQueue> = ::std::sync::Arc::new(queue);
                ::outband::test_suite::$case(&queue);
            }
        )*

        #[test]
        fn every_conformance_case_runs() {
            let generated = [$(stringify!($case)),*];
            let listed: Vec<&str> = ::outband::test_suite::CASES.iter().map(|(name, _)| *name).collect();
            assert_eq!(generated.as_slice(), listed.as_slice());
        }
    };
}
