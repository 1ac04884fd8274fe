//! The function's own attributes: `#[cfg]` on every generated item,
//! `#[deprecated]` on every function a user calls, the rest on the body.

#![deny(deprecated)]

use outband::queue_command;

#[queue_command]
#[cfg(any())]
fn never(value: u8) -> u8 {
    value
}

#[queue_command]
#[deprecated = "use `send_v2`"]
#[must_use]
#[inline]
fn send(value: u8) -> u8 {
    value
}

/// Documented, with its own `# Errors` section.
///
/// # Errors
///
/// When `value` is 0.
#[queue_command]
#[doc(alias = "deliver")]
pub fn send_v2(value: u8) -> Result<u8, String> {
    if value == 0 { Err("zero".into()) } else { Ok(value) }
}

#[allow(deprecated)]
fn use_deprecated() -> u8 {
    assert!(send(1).is_err());
    send::call(1)
}

fn main() {
    assert_eq!(use_deprecated(), 1);
    assert_eq!(send_v2::call(2), Ok(2));
    assert!(send::NAME.ends_with("::send"));
}
