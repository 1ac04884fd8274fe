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
