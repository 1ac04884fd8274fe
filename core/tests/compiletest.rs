//! The `#[queue_command]` UI tests: every error the macro reports, with its
//! message and span (`tests/ui/fail`), and expansions that must compile and
//! run (`tests/ui/pass`).
//!
//! Regenerate the `.stderr` files after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p outband --test compiletest`, then read
//! every diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
