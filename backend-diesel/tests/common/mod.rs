//! What the database tests share: server URLs, skipping, per-test isolation.
#![allow(dead_code, unreachable_pub, unused_imports)]

use outband::Error;
use outband_diesel::DatabaseQueue;
pub use outband_testkit::{mysql_url, pg_url};
use outband_testkit::{skip_or_fail, unique_name};

/// A table prefix no other test of any run uses.
pub fn unique_prefix() -> String {
    format!("{}_", unique_name("t"))
}

/// A queue on `url` with tables of its own, dropped with it; `None` (after a
/// notice) when the server is unreachable and servers are not required.
pub fn server_queue(url: &str) -> Option<DatabaseQueue> {
    server_queue_with_prefix(url, &unique_prefix())
}

/// [`server_queue`] with tables named with `prefix`.
pub fn server_queue_with_prefix(url: &str, prefix: &str) -> Option<DatabaseQueue> {
    match DatabaseQueue::builder(url)
        .prefix(prefix)
        .temporary(true)
        .open()
    {
        Ok(queue) => Some(queue),
        Err(error @ Error::Unavailable(_)) => skip_or_fail(url, &error),
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
