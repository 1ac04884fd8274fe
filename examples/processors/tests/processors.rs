//! The example's three runs print what the seed's doctest expects: on the
//! default SQLite file (`OUTBAND_URL` unset), on Redis, and (with
//! `--features postgres`) on PostgreSQL.

use example_support::{Backend, Target};

fn simple_keeps_order_and_multi_respects_its_threads(backend: Backend) {
    let Some(target) = Target::new(backend, "processors") else {
        return;
    };
    let run = target.run_example(env!("CARGO_BIN_EXE_processors"));
    let stdout = &run.stdout;
    let summaries: Vec<&str> = stdout.lines().filter(|l| l.contains("finished")).collect();
    assert_eq!(summaries.len(), 3, "{stdout}");
    assert_eq!(
        summaries[0].trim(),
        "finished [1, 2, 3, 4], at most 1 at once"
    );
    assert!(summaries[1].contains("finished [3, 4, 1, 2]"), "{stdout}");
    assert_eq!(
        summaries[2].trim(),
        "finished [1, 2, 3, 4], at most 2 at once"
    );
}

#[test]
fn on_the_default_sqlite_file() {
    simple_keeps_order_and_multi_respects_its_threads(Backend::SqliteDefault);
}

#[test]
fn on_redis() {
    simple_keeps_order_and_multi_respects_its_threads(Backend::Redis);
}

#[cfg(feature = "postgres")]
#[test]
fn on_postgres() {
    simple_keeps_order_and_multi_respects_its_threads(Backend::Postgres);
}
