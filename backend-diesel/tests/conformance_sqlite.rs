//! The conformance suite on SQLite: a file per test, and in memory.
#![cfg(feature = "sqlite")]

mod common;

mod file {
    outband::conformance_tests!(crate::common::sqlite_file_queue());
}

mod memory {
    outband::conformance_tests!(
        outband_diesel::DatabaseQueue::open("sqlite::memory:").expect("open in-memory sqlite")
    );
}
