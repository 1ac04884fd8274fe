//! Two commands with one name are refused at start, naming both places.

use std::sync::Arc;

use outband::{Error, MemoryQueue, ProcessorConfig, Registry, SimpleProcessor, queue_command};

mod billing {
    #[outband::queue_command(name = "charge")]
    pub(crate) fn charge(cents: u64) {
        let _ = cents;
    }
}

mod legacy {
    #[outband::queue_command(name = "charge")]
    pub(crate) fn charge(cents: u64) {
        let _ = cents;
    }
}

#[queue_command]
fn unique() {}

#[test]
fn a_duplicate_name_is_rejected_with_both_places() {
    let err = Registry::global().unwrap_err();
    let Error::DuplicateCommand {
        name,
        first,
        second,
    } = &err
    else {
        panic!("expected a duplicate, got {err}");
    };
    assert_eq!(name, "charge");
    assert_ne!(first, second);
    for place in [first, second] {
        assert!(
            place.starts_with("core/tests/duplicate_commands.rs:")
                || place.starts_with("tests/duplicate_commands.rs:"),
            "{place}"
        );
    }
    let message = err.to_string();
    assert!(
        message.contains(first.as_str()) && message.contains(second.as_str()),
        "{message}"
    );

    let refused = SimpleProcessor::new(Arc::new(MemoryQueue::new()), ProcessorConfig::default());
    assert!(
        matches!(refused, Err(Error::DuplicateCommand { .. })),
        "processors refuse to start"
    );
    let _ = (billing::charge::NAME, legacy::charge::NAME, unique::NAME);
}
