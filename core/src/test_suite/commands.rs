//! The commands the suite's jobs run. Each names itself, so its registered
//! name stays `outband::test_suite::…` wherever this file sits.

use crate::queue_command;

/// Returns its argument; its result is stored.
#[queue_command(name = "outband::test_suite::echo")]
pub fn echo(value: u64) -> u64 {
    value
}

/// Always fails with `message`.
#[queue_command(name = "outband::test_suite::fail")]
pub fn fail(message: String) -> Result<(), String> {
    Err(message)
}

/// Always panics with `message`.
#[queue_command(name = "outband::test_suite::panic")]
pub fn panics(message: String) {
    panic!("{message}")
}
