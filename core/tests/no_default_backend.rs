//! Enqueuing with no default backend and no `OUTBAND_URL` is a clear error.

use outband::queue_command;

#[queue_command]
fn ping() {}

#[test]
fn enqueue_without_a_default_queue_is_a_clear_error() {
    // SAFETY of the test: this binary has one test, so no other thread reads the environment.
    assert!(
        std::env::var_os("OUTBAND_URL").is_none(),
        "unset OUTBAND_URL to run this test"
    );
    let err = ping().unwrap_err();
    assert!(matches!(err, outband::Error::NoDefaultBackend));
    assert!(err.to_string().contains("set_default_backend"), "{err}");
    assert!(err.to_string().contains("OUTBAND_URL"), "{err}");
}
