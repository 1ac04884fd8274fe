//! The conformance suite on `MemoryQueue`.
#![cfg(feature = "test-suite")]

outband::conformance_tests!(outband::MemoryQueue::new());
