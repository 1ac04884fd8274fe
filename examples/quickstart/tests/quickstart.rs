//! The quickstart runs as a new user runs it: in an empty directory, with
//! `OUTBAND_URL` unset, so its queue is `outband.db` there; then with
//! `OUTBAND_URL` set to Redis and (with `--features postgres`) PostgreSQL.

use example_support::{Backend, Target};

fn ten_calls_run_in_order(backend: Backend) {
    let Some(target) = Target::new(backend, "quickstart") else {
        return;
    };
    let run = target.run_example(env!("CARGO_BIN_EXE_quickstart"));
    let stdout = &run.stdout;
    let ran: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ran: ")).collect();
    let expected: Vec<String> = (1..=10)
        .map(|n| format!("ran: hello, world (call {n})"))
        .collect();
    assert_eq!(ran, expected, "each call ran once, in enqueue order");
    assert!(
        stdout.contains("is done, and returned \"hello, world (call 10)\""),
        "{stdout}"
    );
    assert_eq!(
        run.dir.path().join("outband.db").exists(),
        target.url().is_none(),
        "the default backend, and only the default, is ./outband.db"
    );
}

#[test]
fn runs_ten_calls_on_the_default_sqlite_file() {
    ten_calls_run_in_order(Backend::SqliteDefault);
}

#[test]
fn runs_ten_calls_on_redis() {
    ten_calls_run_in_order(Backend::Redis);
}

#[cfg(feature = "postgres")]
#[test]
fn runs_ten_calls_on_postgres() {
    ten_calls_run_in_order(Backend::Postgres);
}
