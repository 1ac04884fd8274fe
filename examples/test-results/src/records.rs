//! The application's own table: one record per CI job, counting its test
//! cases' outcomes.
//!
//! It lives in a SQLite file of the application's (`test-results.db` in the
//! working directory unless `--db` or `TEST_RESULTS_DB` says otherwise),
//! apart from outband's tables, whatever backend `OUTBAND_URL` names: the
//! queue may be Redis or PostgreSQL, the application keeps its data where it
//! always did. The server and every consumer open the same file, so they must
//! share a filesystem (one host); several hosts would point their `--db` at a
//! shared database instead.
//!
//! The update is written as an application naturally writes it, and as seed
//! 000's Django service did: read the record, count the new result, write the
//! record back. Two updates of one CI job that overlap both read the same
//! counts, and the second write erases the first: a lost update. Nothing here
//! prevents that; the ordering key on the queued command does (see `main.rs`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use outband::BoxError;
use serde::{Deserialize, Serialize};

/// The work an update does between reading the record and writing it back,
/// standing for what a real handler does there (parsing the report, rendering
/// the job's summary). It widens the window in which a second update of the
/// same CI job reads the same counts, so that without the ordering key the
/// demonstration loses updates every time, not once in a while.
const WORK: Duration = Duration::from_millis(5);

/// How long a connection waits for another process's write lock before
/// failing the attempt (which the queue then retries).
const BUSY_TIMEOUT_MS: u32 = 30_000;

static PATH: OnceLock<PathBuf> = OnceLock::new();

thread_local! {
    /// One connection per thread that updates records: the consumer's worker
    /// threads and the server's blocking threads each keep theirs.
    static CONNECTION: RefCell<Option<SqliteConnection>> = const { RefCell::new(None) };
}

/// The outcome of one test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// The test case passed.
    Passed,
    /// The test case failed.
    Failed,
    /// The test case did not run.
    Skipped,
}

/// One CI job's record.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub(crate) struct Record {
    /// The CI job's id.
    #[diesel(sql_type = Text)]
    pub(crate) ci_job: String,
    /// Test cases that passed.
    #[diesel(sql_type = BigInt)]
    pub(crate) passed: i64,
    /// Test cases that failed.
    #[diesel(sql_type = BigInt)]
    pub(crate) failed: i64,
    /// Test cases that were skipped.
    #[diesel(sql_type = BigInt)]
    pub(crate) skipped: i64,
    /// The test case counted last.
    #[diesel(sql_type = Text)]
    pub(crate) last_test_case: String,
}

impl Record {
    fn new(ci_job: &str) -> Self {
        Record {
            ci_job: ci_job.to_owned(),
            passed: 0,
            failed: 0,
            skipped: 0,
            last_test_case: String::new(),
        }
    }

    /// Every test case counted.
    pub(crate) fn total(&self) -> i64 {
        self.passed + self.failed + self.skipped
    }

    fn count(&mut self, test_case: &str, outcome: Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Skipped => self.skipped += 1,
        }
        test_case.clone_into(&mut self.last_test_case);
    }
}

/// Sets the database file, once, before any record is read or written.
pub(crate) fn set_path(path: PathBuf) {
    // main sets it once; a second call would be a bug, and the first wins
    let _ = PATH.set(path);
}

fn path() -> &'static Path {
    PATH.get()
        .map_or(Path::new("test-results.db"), PathBuf::as_path)
}

/// Creates the table if it is missing, so that a wrong path fails at start.
pub(crate) fn init() -> Result<(), BoxError> {
    with_connection(|_| Ok(()))
}

/// Counts one test case's outcome in its CI job's record, by
/// read-modify-write.
pub(crate) fn add_result(ci_job: &str, test_case: &str, outcome: Outcome) -> Result<(), BoxError> {
    with_connection(|conn| {
        let mut record = diesel::sql_query(
            "SELECT id AS ci_job, passed, failed, skipped, last_test_case \
             FROM ci_jobs WHERE id = ?",
        )
        .bind::<Text, _>(ci_job)
        .get_result::<Record>(conn)
        .optional()?
        .unwrap_or_else(|| Record::new(ci_job));
        record.count(test_case, outcome);
        std::thread::sleep(WORK);
        diesel::sql_query(
            "INSERT INTO ci_jobs (id, passed, failed, skipped, last_test_case) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET passed = excluded.passed, \
             failed = excluded.failed, skipped = excluded.skipped, \
             last_test_case = excluded.last_test_case",
        )
        .bind::<Text, _>(&record.ci_job)
        .bind::<BigInt, _>(record.passed)
        .bind::<BigInt, _>(record.failed)
        .bind::<BigInt, _>(record.skipped)
        .bind::<Text, _>(&record.last_test_case)
        .execute(conn)?;
        Ok(())
    })
}

/// One CI job's record, if any result of it was counted.
pub(crate) fn record(ci_job: &str) -> Result<Option<Record>, BoxError> {
    with_connection(|conn| {
        diesel::sql_query(
            "SELECT id AS ci_job, passed, failed, skipped, last_test_case \
             FROM ci_jobs WHERE id = ?",
        )
        .bind::<Text, _>(ci_job)
        .get_result(conn)
        .optional()
    })
}

/// Every record, by CI job id.
pub(crate) fn all() -> Result<Vec<Record>, BoxError> {
    with_connection(|conn| {
        diesel::sql_query(
            "SELECT id AS ci_job, passed, failed, skipped, last_test_case \
             FROM ci_jobs ORDER BY id",
        )
        .load(conn)
    })
}

/// Runs `f` on this thread's connection, opening it first if needed.
fn with_connection<T>(
    f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
) -> Result<T, BoxError> {
    CONNECTION.with_borrow_mut(|slot| {
        let conn = match slot {
            Some(conn) => conn,
            None => slot.insert(connect()?),
        };
        f(conn).map_err(|error| format!("{}: {error}", path().display()).into())
    })
}

fn connect() -> Result<SqliteConnection, BoxError> {
    let path = path();
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    // Readers never wait for a writer in WAL mode; writers from several
    // processes take turns, waiting up to the busy timeout.
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS ci_jobs (
             id TEXT PRIMARY KEY NOT NULL,
             passed INTEGER NOT NULL,
             failed INTEGER NOT NULL,
             skipped INTEGER NOT NULL,
             last_test_case TEXT NOT NULL
         );"
    ))
    .map_err(|error| format!("cannot prepare {}: {error}", path.display()))?;
    Ok(conn)
}
