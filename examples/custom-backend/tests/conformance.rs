//! The conformance suite on `FileQueue`: every case, each in a temporary
//! directory of its own that lives as long as the case.

use std::any::Any;
use std::sync::Arc;

use custom_backend::FileQueue;
use outband::BaseQueue;
use outband::test_suite::Fixture;

/// A queue in a fresh temporary directory, deleted when the case ends.
struct TempFileQueue;

impl Fixture for TempFileQueue {
    fn open(self) -> Option<(Arc<dyn BaseQueue>, Box<dyn Any>)> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let backend = FileQueue::open(dir.path()).expect("a file queue");
        Some((Arc::new(backend), Box::new(dir)))
    }
}

outband::conformance_tests!(TempFileQueue);
