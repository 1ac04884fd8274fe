//! The operations on one connection, written once and compiled for each
//! enabled diesel connection type by `store_impl!`.
//!
//! Every method runs its statements in one transaction (SQLite: an immediate
//! one, so the write lock is taken up front and waits on the busy timeout
//! instead of failing on upgrade), so a batch is one commit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Double, Integer, Nullable, Text};
#[cfg(any(feature = "sqlite", feature = "mysql"))]
use outband::backend::hash::fnv1a;
use outband::{Claimed, Completion, Job, JobId, JobState, Lease, NewJob, Outcome, Progress, When};

use crate::prepared::Stmt;
use crate::sql::Statements;

/// Rows per `INSERT` statement: 15 binds each (7,500 a statement) stays under
/// every database's limit on bind parameters (SQLite's is 32,766, MySQL's
/// 65,535).
pub(crate) const INSERT_CHUNK: usize = 500;

/// A stored job as the database returns it.
#[derive(QueryableByName, Debug)]
pub(crate) struct Row {
    #[diesel(sql_type = BigInt)]
    pub(crate) id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) command: String,
    #[diesel(sql_type = Binary)]
    pub(crate) args: Vec<u8>,
    #[diesel(sql_type = Text)]
    pub(crate) queue: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) ordering_key: Option<String>,
    #[diesel(sql_type = Integer)]
    pub(crate) priority: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) attempt: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) max_attempts: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) state: i32,
    #[diesel(sql_type = BigInt)]
    pub(crate) token: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) run_at: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) enqueued_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) started_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) finished_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) deadline: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) duration_us: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) last_error: Option<String>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub(crate) result: Option<Vec<u8>>,
    /// The fraction of the latest progress report; NULL when there is none.
    #[diesel(sql_type = Nullable<Double>)]
    pub(crate) progress: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) progress_note: Option<String>,
    /// The job's own timeout in whole milliseconds; NULL when it has none.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) timeout_ms: Option<i64>,
    /// The job's concurrency key and max; NULL when it has none (and in
    /// `{done}`).
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) limit_key: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(crate) limit_max: Option<i32>,
    /// The job's rate key, max and period in µs; NULL when it has none
    /// (and in `{done}`).
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) rate_key: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(crate) rate_max: Option<i32>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) rate_per_us: Option<i64>,
}

/// A single number.
#[derive(QueryableByName, Debug)]
pub(crate) struct Number {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// MySQL: a key of a queue's pending limited jobs, as a step of
/// [`Statements::limit_keys`] finds it.
#[derive(QueryableByName, Debug)]
pub(crate) struct LimitKey {
    /// 0 for a concurrency key, 1 for a rate key.
    #[diesel(sql_type = BigInt)]
    pub(crate) kind: i64,
    #[diesel(sql_type = Text)]
    pub(crate) k: String,
    /// Whether the key may let a job start: not 0.
    #[diesel(sql_type = BigInt)]
    pub(crate) open: i64,
    /// Whether the queue has keys of this kind below this one: not 0.
    #[diesel(sql_type = BigInt)]
    pub(crate) more: i64,
}

/// A nullable integer a statement returns.
#[derive(QueryableByName, Debug)]
pub(crate) struct MaybeNumber {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) n: Option<i64>,
}

/// A running job's lease after a heartbeat: its deadline, and why it was
/// asked to cancel, if it was.
#[derive(QueryableByName, Debug)]
pub(crate) struct LeaseRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) n: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) cancel_reason: Option<String>,
}

/// A job's state code.
#[derive(QueryableByName, Debug)]
pub(crate) struct StateCode {
    #[diesel(sql_type = Integer)]
    pub(crate) s: i32,
}

/// The job holding a unique key: its state code and finish time, with the
/// database's clock read by the same statement.
#[derive(QueryableByName, Debug)]
pub(crate) struct Holder {
    #[diesel(sql_type = Integer)]
    pub(crate) s: i32,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) finished_at: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub(crate) db_now: i64,
}

/// A count per state.
#[derive(QueryableByName, Debug)]
pub(crate) struct StateCount {
    #[diesel(sql_type = Integer)]
    pub(crate) s: i32,
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// Run-time aggregates of the done jobs of a queue.
#[derive(QueryableByName, Debug)]
pub(crate) struct RunTimes {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) mean: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub(crate) recent: i64,
    /// The microseconds since the oldest of the jobs counted ended; `None`
    /// when there are none.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) span: Option<i64>,
}

/// A line of PostgreSQL's `EXPLAIN`.
#[derive(QueryableByName, Debug)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    pub(crate) line: String,
}

/// The rows MySQL's `EXPLAIN` estimates a table access reads, which
/// MariaDB gives as text.
#[derive(QueryableByName, Debug)]
pub(crate) struct PlanRows {
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) rows: Option<String>,
}

/// A row of the consumer registry, with the database's clock.
#[derive(QueryableByName, Debug)]
pub(crate) struct ConsumerRow {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
    #[diesel(sql_type = Text)]
    pub(crate) info: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) seen_at: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) expires_at: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) db_now: i64,
}

/// A queue's name.
#[derive(QueryableByName, Debug)]
pub(crate) struct Name {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
}

/// Microseconds in `d`, saturating.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Microseconds since the Unix epoch of `t` (negative before it).
pub(crate) fn epoch_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => micros(after),
        Err(before) => -micros(before.duration()),
    }
}

/// The time `us` microseconds after the Unix epoch.
pub(crate) fn time_of(us: i64) -> SystemTime {
    let magnitude = Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// Each state and the code the `state` column stores it as.
pub(crate) const STATE_CODES: [(JobState, i32); 5] = [
    (JobState::Pending, 0),
    (JobState::Running, 1),
    (JobState::Done, 2),
    (JobState::Dead, 3),
    (JobState::Cancelled, 4),
];

/// The state stored as `code`.
pub(crate) fn state_of(code: i32) -> Option<JobState> {
    STATE_CODES
        .iter()
        .find(|&&(_, known)| known == code)
        .map(|&(state, _)| state)
}

/// The code the `state` column stores `state` as; `None` for a state this
/// crate does not know, which no row holds.
pub(crate) fn code_of(state: JobState) -> Option<i32> {
    STATE_CODES
        .iter()
        .find(|&&(known, _)| known == state)
        .map(|&(_, code)| code)
}

/// What the reason of a row found malformed starts with.
pub(crate) const MALFORMED: &str = "malformed record: ";

/// Why a row's state code is malformed, as the text before and after the
/// code, so that SQL can put each row's own code in between.
pub(crate) fn unknown_state_reason() -> (&'static str, String) {
    let known: Vec<String> = STATE_CODES
        .iter()
        .map(|(state, code)| format!("{} {code}", state.as_str()))
        .collect();
    (
        "state code ",
        format!(" is not one outband knows ({})", known.join(", ")),
    )
}

impl Row {
    /// The job this row holds, or why the row is malformed.
    pub(crate) fn to_job(&self) -> Result<Job, String> {
        let state = state_of(self.state).ok_or_else(|| {
            let (head, tail) = unknown_state_reason();
            format!("{head}{}{tail}", self.state)
        })?;
        if self.command.is_empty() {
            return Err("the command name is empty".into());
        }
        outband::codec::check_size(self.args.len()).map_err(|e| e.to_string())?;
        let priority = i16::try_from(self.priority)
            .map_err(|_| format!("priority {} is out of range", self.priority))?;
        let attempt = u32::try_from(self.attempt)
            .map_err(|_| format!("attempt {} is negative", self.attempt))?;
        let max_attempts = u32::try_from(self.max_attempts)
            .ok()
            .filter(|&m| m > 0)
            .ok_or_else(|| format!("max_attempts {} is not positive", self.max_attempts))?;
        let duration = match self.duration_us {
            Some(us) => Some(Duration::from_micros(
                u64::try_from(us).map_err(|_| format!("duration {us} µs is negative"))?,
            )),
            None => None,
        };
        let timeout = match self.timeout_ms {
            Some(ms) => Some(Duration::from_millis(
                u64::try_from(ms).map_err(|_| format!("timeout {ms} ms is negative"))?,
            )),
            None => None,
        };
        let id = JobId(u64::try_from(self.id).map_err(|_| format!("id {} is negative", self.id))?);
        let mut job = self.job_with(id);
        job.timeout = timeout;
        job.priority = priority;
        job.attempt = attempt;
        job.max_attempts = max_attempts;
        job.state = state;
        job.duration = duration;
        Ok(job)
    }

    /// The job this row holds, for reading ([`job`](outband::BaseQueue::job),
    /// [`dead_jobs`](outband::BaseQueue::dead_jobs)): a malformed row, which
    /// a claim has sent to `dead`, is read leniently, each field that is out
    /// of range as its default (as outband-redis reads a damaged record), so
    /// that it can still be listed, retried or deleted, and never makes the
    /// dead letters around it unlistable. A state code outband does not know
    /// reads as `dead`, where the next recovery step puts the row.
    pub(crate) fn to_job_lenient(&self) -> Job {
        self.to_job().unwrap_or_else(|_| {
            let mut job = self.job_with(JobId(self.id.unsigned_abs()));
            job.priority = i16::try_from(self.priority).unwrap_or_default();
            job.attempt = u32::try_from(self.attempt).unwrap_or_default();
            job.max_attempts = u32::try_from(self.max_attempts).unwrap_or_default();
            job.state = state_of(self.state).unwrap_or(JobState::Dead);
            job.duration = self
                .duration_us
                .and_then(|us| u64::try_from(us).ok())
                .map(Duration::from_micros);
            job.timeout = self
                .timeout_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis);
            job
        })
    }

    /// The job with `id` and the fields of this row that read the same
    /// strictly and leniently; the caller sets the others.
    fn job_with(&self, id: JobId) -> Job {
        let mut job = Job::new(id, self.command.clone(), self.args.clone());
        job.queue = self.queue.clone();
        job.key = self.ordering_key.clone();
        job.run_at = time_of(self.run_at);
        job.enqueued_at = time_of(self.enqueued_at);
        job.started_at = self.started_at.map(time_of);
        job.finished_at = self.finished_at.map(time_of);
        job.last_error = self.last_error.clone();
        job.result = self.result.clone();
        job.concurrency = match (&self.limit_key, self.limit_max) {
            (Some(key), Some(max)) => Some(outband::Concurrency::new(
                key.as_str(),
                u32::try_from(max).unwrap_or_default(),
            )),
            _ => None,
        };
        job.rate = rate_limit(
            self.rate_key.as_deref(),
            self.rate_max.map(i64::from),
            self.rate_per_us,
        );
        job.progress = self.progress.map(|fraction| {
            Progress::new(
                fraction as f32,
                self.progress_note.clone().unwrap_or_default(),
            )
        });
        job
    }

    /// The job with the lease a claim gave it.
    pub(crate) fn to_claimed(&self) -> Result<Claimed, String> {
        let job = self.to_job()?;
        let deadline = self.deadline.ok_or("a claimed job has no lease deadline")?;
        Ok(Claimed {
            lease: Lease {
                job: job.id,
                token: self.token.unsigned_abs(),
                deadline: time_of(deadline),
            },
            job,
        })
    }
}

/// The claim order: priority, then id.
pub(crate) fn claim_order(rows: &mut [Row]) {
    rows.sort_unstable_by_key(|r| (std::cmp::Reverse(r.priority), r.id));
}

/// The `(absolute run_at, delay)` binds of a job's `When`: one of them is set.
pub(crate) fn when_binds(when: When) -> (Option<i64>, i64) {
    match when {
        When::Now => (None, 0),
        When::At(at) => (Some(epoch_micros(at)), 0),
        When::After(delay) => (None, micros(delay)),
    }
}

/// `(?, ?, …)`: `n` placeholders for `IN`.
pub(crate) fn placeholders(n: usize) -> String {
    format!("({})", vec!["?"; n].join(", "))
}

/// The insert statement for `rows` jobs.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) fn insert_sql(st: &Statements, rows: usize) -> Stmt {
    let mut sql = st.insert_head.clone();
    sql.push_str(&vec![st.insert_row.as_str(); rows].join(", "));
    sql.push_str(st.insert_tail);
    Stmt::new(&sql)
}

/// What one completion does: which statement and its leading binds.
pub(crate) enum CompletionSql<'a> {
    Done {
        duration_us: i64,
        result: Option<&'a [u8]>,
    },
    Retry {
        delay_us: i64,
        error: &'a str,
    },
    Dead {
        error: &'a str,
    },
    Release,
}

impl<'a> CompletionSql<'a> {
    pub(crate) fn of(outcome: &'a Outcome) -> Self {
        match outcome {
            Outcome::Done { result, duration } => Self::Done {
                duration_us: micros(*duration),
                result: result.as_deref(),
            },
            Outcome::Retry { delay, error } => Self::Retry {
                delay_us: micros(*delay),
                error,
            },
            Outcome::Dead { error } => Self::Dead { error },
            Outcome::Release => Self::Release,
            // an outcome of a later outband: the job ends dead, with a reason
            _ => Self::Dead {
                error: "an outcome this backend does not know",
            },
        }
    }
}

/// The outcome of an update that touched `n` rows under a lease.
pub(crate) fn completion(n: usize) -> Completion {
    if n == 0 {
        Completion::LeaseLost
    } else {
        Completion::Applied
    }
}

/// The binds of a job for an insert, checked.
pub(crate) fn job_binds(job: &NewJob) -> (i32, i32) {
    (
        i32::from(job.priority),
        i32::try_from(job.max_attempts).unwrap_or(i32::MAX),
    )
}

/// The bind of a job's own timeout for an insert: whole milliseconds
/// ([`whole_millis`](outband::backend::fate::whole_millis)), saturating;
/// `None` when it has none.
pub(crate) fn timeout_bind(job: &NewJob) -> Option<i64> {
    job.timeout.map(|timeout| {
        i64::try_from(outband::backend::fate::whole_millis(timeout).as_millis()).unwrap_or(i64::MAX)
    })
}

/// The binds of a job's concurrency limit for an insert: its key and max,
/// both `None` when it has none.
pub(crate) fn limit_binds(job: &NewJob) -> (Option<&str>, Option<i64>) {
    match &job.concurrency {
        Some(limit) => (Some(limit.key.as_str()), Some(i64::from(limit.max))),
        None => (None, None),
    }
}

/// The binds of a job's rate limit for an insert: its key, max and period
/// in microseconds (saturating), all `None` when it has none.
pub(crate) fn rate_binds(job: &NewJob) -> (Option<&str>, Option<i64>, Option<i64>) {
    match &job.rate {
        Some(rate) => (
            Some(rate.key.as_str()),
            Some(i64::from(rate.max)),
            Some(i64::try_from(rate.per.as_micros()).unwrap_or(i64::MAX)),
        ),
        None => (None, None, None),
    }
}

/// How a connection type inserts a batch of jobs.
pub(crate) trait InsertRows {
    /// Inserts `jobs` (in the caller's transaction, or on their own when
    /// [`one_statement`] says they can be) and returns their ids in order.
    /// `durable`: on PostgreSQL, the commit waits for the WAL flush whatever
    /// the session's `synchronous_commit`; SQLite and MySQL commit as their
    /// settings say either way.
    fn insert_rows(
        &mut self,
        st: &Statements,
        jobs: &[NewJob],
        durable: bool,
    ) -> QueryResult<Vec<i64>>;
}

/// Whether [`InsertRows::insert_rows`] inserts `jobs` in one statement, which
/// is atomic on its own and durable on its own, so that outside a
/// transaction it needs no `BEGIN` and `COMMIT` round trips.
///
/// PostgreSQL: any batch without an ordering key (a keyed batch first takes
/// its key locks, which must be held before the ids are drawn and until the
/// commit). MySQL: a batch without an ordering key that fits one `INSERT`
/// ([`INSERT_CHUNK`] rows); its ids are read with `LAST_INSERT_ID()`, which
/// belongs to the connection. SQLite: never; its transactions cost no round
/// trip, and the immediate one takes the write lock up front.
pub(crate) fn one_statement(st: &Statements, jobs: &[NewJob]) -> bool {
    let keyless = jobs.iter().all(|job| job.key.is_none());
    match st.dialect {
        crate::sql::Dialect::Postgres => keyless,
        crate::sql::Dialect::Mysql => keyless && jobs.len() <= INSERT_CHUNK,
        crate::sql::Dialect::Sqlite => false,
    }
}

/// A row with the database's clock read by the same statement.
#[derive(QueryableByName, Debug)]
pub(crate) struct RowNow {
    #[diesel(embed)]
    pub(crate) stored: Row,
    #[diesel(sql_type = BigInt)]
    pub(crate) db_now: i64,
}

/// [`InsertRows`] with multi-row `INSERT … VALUES` statements of up to
/// [`INSERT_CHUNK`] rows.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
macro_rules! values_insert_impl {
    ($conn:ty) => {
        impl InsertRows for $conn {
            fn insert_rows(
                &mut self,
                st: &Statements,
                jobs: &[NewJob],
                _durable: bool,
            ) -> QueryResult<Vec<i64>> {
                let locks = match st.dialect {
                    crate::sql::Dialect::Mysql => key_lock_rows(jobs),
                    _ => Vec::new(),
                };
                if !locks.is_empty() {
                    // InnoDB keeps the upserted rows locked until the end of
                    // the transaction: a second enqueue of a key waits here
                    let stmt = Stmt::new(&format!(
                        "{}{} ON DUPLICATE KEY UPDATE h = h",
                        st.lock_keys_head,
                        vec!["(?)"; locks.len()].join(", ")
                    ));
                    let mut query = stmt.query();
                    if locks.len() > 1 {
                        query = query.uncached();
                    }
                    for &row in &locks {
                        query = query.i32(row);
                    }
                    query.execute(self)?;
                }
                let mut ids = Vec::with_capacity(jobs.len());
                for chunk in jobs.chunks(INSERT_CHUNK) {
                    let stmt = insert_sql(st, chunk.len());
                    let mut query = stmt.query();
                    if chunk.len() != 1 && chunk.len() != INSERT_CHUNK {
                        query = query.uncached();
                    }
                    for job in chunk {
                        let (priority, max_attempts) = job_binds(job);
                        let (at, delay) = when_binds(job.when);
                        let (limit_key, limit_max) = limit_binds(job);
                        let (rate_key, rate_max, rate_per) = rate_binds(job);
                        query = query
                            .text(job.command.as_str())
                            .opt_bytes(Some(job.args.as_slice()))
                            .text(job.queue.as_str())
                            .opt_text(job.key.as_deref())
                            .i32(priority)
                            .i32(max_attempts)
                            .opt_i64(at)
                            .i64(delay)
                            .opt_i64(timeout_bind(job))
                            .opt_text(limit_key)
                            .opt_i64(limit_max)
                            .opt_text(rate_key)
                            .opt_i64(rate_max)
                            .opt_i64(rate_per);
                    }
                    if st.dialect == crate::sql::Dialect::Mysql {
                        query.execute(self)?;
                        let first =
                            diesel::sql_query("SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS n")
                                .get_result::<Number>(self)?
                                .n;
                        // one multi-row insert gets consecutive ids (a "simple
                        // insert" under every innodb_autoinc_lock_mode)
                        ids.extend((0..chunk.len() as i64).map(|i| first + i));
                    } else {
                        let mut rows: Vec<i64> = query
                            .load::<Number>(self)?
                            .into_iter()
                            .map(|r| r.n)
                            .collect();
                        // ids are given in row order; RETURNING's order is not promised
                        rows.sort_unstable();
                        ids.extend(rows);
                    }
                }
                Ok(ids)
            }
        }
    };
}

/// Runs `f` again, up to four more times, when the database gave up on its
/// transaction for a conflict with another one. InnoDB picks a deadlock's
/// victim and asks it to restart (`SerializationFailure`), which happens when
/// completions moving rows to `<prefix>done` cross concurrent claims.
/// PostgreSQL ends one of two deadlocked statements (SQLSTATE `40P01`, which
/// diesel reports as an unknown error with the message `deadlock detected`):
/// two consumers' complete-and-claim statements can each wait for the other,
/// one deleting its finished jobs while the other's claim, locking a pending
/// row that the first one's earlier claim has since taken, waits for the
/// first one's transaction. Either way the transaction was rolled back, so
/// running it again is safe.
pub(crate) fn retry_conflicts<T>(mut f: impl FnMut() -> QueryResult<T>) -> QueryResult<T> {
    use diesel::result::Error;
    let mut attempt = 0u64;
    loop {
        match f() {
            Err(Error::DatabaseError(kind, info))
                if attempt < 4 && is_conflict(&kind, info.message()) =>
            {
                attempt += 1;
                log::debug!("transaction restarted after a conflict: {}", info.message());
                std::thread::sleep(Duration::from_millis(attempt * 2));
            }
            other => return other,
        }
    }
}

/// Whether a database error is a conflict with another transaction that
/// rolled this one back: see [`retry_conflicts`].
fn is_conflict(kind: &diesel::result::DatabaseErrorKind, message: &str) -> bool {
    use diesel::result::DatabaseErrorKind;
    matches!(kind, DatabaseErrorKind::SerializationFailure)
        || (matches!(kind, DatabaseErrorKind::Unknown) && message.starts_with("deadlock detected"))
}

/// MySQL: the rows of `<prefix>keys` (migration `0004_key_locks`) that lock
/// the ordering keys of `jobs` until the transaction ends, as
/// [`lock_ordering_keys`] does on PostgreSQL: FNV-1a of queue and key, modulo
/// 65,536, sorted so that two batches never lock in opposite orders.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) fn key_lock_rows(jobs: &[NewJob]) -> Vec<i32> {
    let mut rows: Vec<i32> = jobs
        .iter()
        .filter_map(|job| {
            let key = job.key.as_deref()?;
            let text = format!("{}:{}:{key}", job.queue.len(), job.queue);
            Some(i32::from((fnv1a(text.as_bytes()) % 65_536) as u16))
        })
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

#[cfg(feature = "sqlite")]
values_insert_impl!(SqliteConnection);
#[cfg(feature = "mysql")]
values_insert_impl!(MysqlConnection);

/// What [`DoneAndClaim::done_and_claim`] gives: the completions, the
/// claimed rows, and whether the queue has pending limited jobs (then no
/// row was claimed).
pub(crate) type DoneClaimed = (Vec<Completion>, Vec<Row>, bool);

/// Jobs completed and the next ones claimed in one statement, where a
/// connection type has such a statement.
pub(crate) trait DoneAndClaim {
    /// Records `completions`, when all of them are done, and claims up to
    /// `max` jobs of `queue`, in one statement; returns the completions and
    /// the claimed rows, and whether `queue` has pending limited jobs (then
    /// nothing was claimed, and a transaction claims next), or `None`
    /// (nothing ran) where this connection type has no such statement or an
    /// outcome is not done.
    fn done_and_claim(
        &mut self,
        _st: &Statements,
        _completions: &[(Lease, Outcome)],
        _queue: &str,
        _max: i64,
        _lease_us: i64,
    ) -> QueryResult<Option<DoneClaimed>> {
        Ok(None)
    }

    /// Claims up to `max` unlimited jobs of `queue` in one statement while
    /// it has no limited job that may start; returns the claimed rows and
    /// whether it has such jobs (then nothing was claimed), or `None`
    /// where this connection type has no such statement.
    fn claim_marked(
        &mut self,
        _st: &Statements,
        _queue: &str,
        _max: i64,
        _lease_us: i64,
    ) -> QueryResult<Option<(Vec<Row>, bool)>> {
        Ok(None)
    }
}

#[cfg(feature = "sqlite")]
impl DoneAndClaim for SqliteConnection {}
#[cfg(feature = "mysql")]
impl DoneAndClaim for MysqlConnection {}

/// MySQL: claims the rows of `rows`, selected with the database's clock and
/// locked by the caller's transaction: one update by id, and the rows
/// patched with what it wrote.
pub(crate) fn claim_locked_rows<C>(
    conn: &mut C,
    st: &Statements,
    mut rows: Vec<RowNow>,
    lease_us: i64,
) -> QueryResult<Vec<Row>>
where
    C: Connection,
    for<'a> crate::prepared::Sql<'a>: diesel::query_dsl::methods::ExecuteDsl<C>,
{
    let Some(now) = rows.first().map(|r| r.db_now) else {
        return Ok(Vec::new());
    };
    let deadline = now.saturating_add(lease_us);
    let ids: Vec<i64> = rows.iter().map(|r| r.stored.id).collect();
    let update = Stmt::new(&format!(
        "{}{}",
        st.claim_update_head,
        placeholders(ids.len())
    ));
    let mut query = update.query().i64(now).i64(deadline);
    if ids.len() > 16 {
        // one prepared statement per batch size: keep few
        query = query.uncached();
    }
    for &id in &ids {
        query = query.i64(id);
    }
    query.execute(conn)?;
    // the rows are locked: what the update wrote is known
    for r in &mut rows {
        r.stored.state = 1;
        r.stored.attempt += 1;
        r.stored.token += 1;
        r.stored.started_at = Some(now);
        r.stored.deadline = Some(deadline);
        r.stored.progress = None;
        r.stored.progress_note = None;
    }
    Ok(rows.into_iter().map(|r| r.stored).collect())
}

/// A ready limited job a claim may start, as [`Statements::limited_candidates`]
/// reads it under the keys' locks.
#[derive(QueryableByName, Debug)]
pub(crate) struct Candidate {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) limit_key: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) limit_max: Option<i64>,
    /// The running jobs of `limit_key`, as this claim's snapshot counts them.
    #[diesel(sql_type = BigInt)]
    pub(crate) running: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) rate_key: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) rate_max: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) rate_per_us: Option<i64>,
    /// `rate_key`'s `tat`, in µs; NULL for a key never started.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) tat: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub(crate) db_now: i64,
}

impl Candidate {
    /// The job's rate limit, when it has one.
    fn rate(&self) -> Option<outband::RateLimit> {
        rate_limit(self.rate_key.as_deref(), self.rate_max, self.rate_per_us)
    }
}

/// A rate limit as its columns keep it: `rate_key`, `rate_max` and
/// `rate_per_us`, all set or none.
fn rate_limit(
    key: Option<&str>,
    max: Option<i64>,
    per_us: Option<i64>,
) -> Option<outband::RateLimit> {
    Some(outband::RateLimit::new(
        key?,
        u32::try_from(max?).unwrap_or(u32::MAX).max(1),
        Duration::from_micros(u64::try_from(per_us?).unwrap_or(0)),
    ))
}

/// Walks `candidates`, in claim order, and picks up to `max` of them that
/// may start, each after the ones picked before it: a job with a
/// concurrency limit while fewer than its `limit_max` jobs of its key run,
/// a job with a rate limit when [`RateLimit::admit`](outband::RateLimit::admit)
/// lets it start on the key's `tat` (a job with both, when both do). A
/// job passed over changes nothing. `only`, when given, limits the walk to
/// those ids. Returns the ids picked and the rate keys' new `tat`s, in µs.
pub(crate) fn walk_limited(
    candidates: &[Candidate],
    max: usize,
    only: Option<&std::collections::HashSet<i64>>,
) -> (Vec<i64>, Vec<(String, i64)>) {
    use std::collections::HashMap;
    let mut running: HashMap<&str, i64> = HashMap::new();
    let mut tats: HashMap<&str, Option<i64>> = HashMap::new();
    let mut picked = Vec::new();
    for c in candidates {
        if picked.len() >= max {
            break;
        }
        if only.is_some_and(|only| !only.contains(&c.n)) {
            continue;
        }
        if let (Some(key), Some(limit)) = (c.limit_key.as_deref(), c.limit_max)
            && *running.entry(key).or_insert(c.running) >= limit
        {
            continue;
        }
        let mut new_tat = None;
        if let (Some(key), Some(rate)) = (c.rate_key.as_deref(), c.rate()) {
            let tat = *tats.entry(key).or_insert(c.tat);
            match rate.admit(tat.map(time_of), time_of(c.db_now)) {
                Ok(tat) => new_tat = Some((key, micros_of(tat))),
                Err(_) => continue,
            }
        }
        if let Some(key) = c.limit_key.as_deref() {
            *running.entry(key).or_insert(c.running) += 1;
        }
        if let Some((key, tat)) = new_tat {
            tats.insert(key, Some(tat));
        }
        picked.push(c.n);
    }
    let mut changed: Vec<(String, i64)> = Vec::new();
    for c in candidates {
        if let Some(key) = c.rate_key.as_deref()
            && let Some(Some(tat)) = tats.get(key)
            && c.tat != Some(*tat)
            && !changed.iter().any(|(k, _)| k == key)
        {
            changed.push((key.to_owned(), *tat));
        }
    }
    // keys in one order, so that two upserts never wait on each other
    changed.sort();
    (picked, changed)
}

/// Microseconds since the Unix epoch of `t`, saturating.
fn micros_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The claim of jobs with a concurrency or rate limit: exact under
/// concurrent claims, since it counts each concurrency key's running jobs
/// and reads each rate key's `tat` under a lock on the key that every claim
/// of the key takes.
pub(crate) trait ClaimLimited: Sized {
    /// Claims up to `max` ready limited jobs of `queue` that may start, in
    /// claim order ([`walk_limited`]), and writes the `tat` of the rate keys
    /// of the jobs it started, inside the caller's write transaction.
    /// SQLite: the transaction holds the write lock. PostgreSQL:
    /// `pg_advisory_xact_lock` on the hash of each key (concurrency and
    /// rate) of the queue's ready limited jobs, in ascending order. MySQL:
    /// the rows of `<prefix>limit_locks` of those keys' hashes, upserted in
    /// ascending order.
    fn claim_limited(
        &mut self,
        st: &Statements,
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<Vec<Row>> {
        let Some(candidates) = self.limited_candidates(st, queue)? else {
            return Ok(Vec::new());
        };
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let (ids, _) = walk_limited(&candidates, max, None);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.claim_ids(st, &ids, lease_us)?;
        // a job cancelled or flushed since stays, and takes no turn: the
        // tats are those of the jobs started, a subset of the walk's, which
        // the same walk lets start
        let started: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
        let (_, tats) = walk_limited(&candidates, max, Some(&started));
        for (key, tat) in &tats {
            self.set_tat(st, key, *tat)?;
        }
        Ok(rows)
    }

    /// Takes the keys' locks and reads [`Statements::limited_candidates`];
    /// `None` when the queue has no ready limited job.
    fn limited_candidates(
        &mut self,
        st: &Statements,
        queue: &str,
    ) -> QueryResult<Option<Vec<Candidate>>>;

    /// Claims the jobs of `ids` still pending.
    fn claim_ids(&mut self, st: &Statements, ids: &[i64], lease_us: i64) -> QueryResult<Vec<Row>>;

    /// Sets `key`'s `tat`.
    fn set_tat(&mut self, st: &Statements, key: &str, tat: i64) -> QueryResult<()>;
}

/// [`ClaimLimited::set_tat`], the same on every connection.
macro_rules! set_tat {
    () => {
        fn set_tat(&mut self, st: &Statements, key: &str, tat: i64) -> QueryResult<()> {
            st.rate_upsert.query().text(key).i64(tat).execute(self)?;
            Ok(())
        }
    };
}

#[cfg(feature = "sqlite")]
impl ClaimLimited for SqliteConnection {
    fn limited_candidates(
        &mut self,
        st: &Statements,
        queue: &str,
    ) -> QueryResult<Option<Vec<Candidate>>> {
        st.limited_candidates
            .query()
            .text(queue)
            .text(queue)
            .load::<Candidate>(self)
            .map(Some)
    }

    fn claim_ids(&mut self, st: &Statements, ids: &[i64], lease_us: i64) -> QueryResult<Vec<Row>> {
        let update = Stmt::new(&format!(
            "{}{} RETURNING *",
            st.claim_ids_head,
            placeholders(ids.len())
        ));
        let mut query = update.query().uncached().i64(lease_us);
        for &id in ids {
            query = query.i64(id);
        }
        query.load::<Row>(self)
    }

    set_tat!();
}

#[cfg(feature = "postgres")]
impl ClaimLimited for PgConnection {
    fn limited_candidates(
        &mut self,
        st: &Statements,
        queue: &str,
    ) -> QueryResult<Option<Vec<Candidate>>> {
        let hashes: Vec<i32> = st
            .lock_limits
            .query()
            .text(queue)
            .text(queue)
            .text(queue)
            .text(queue)
            .load::<Number>(self)?
            .into_iter()
            .filter_map(|r| i32::try_from(r.n).ok())
            .collect();
        if hashes.is_empty() {
            return Ok(None);
        }
        st.limited_candidates
            .pg_query()
            .text(queue)
            .text(queue)
            .i32s(hashes.clone())
            .i32s(hashes)
            .load::<Candidate>(self)
            .map(Some)
    }

    fn claim_ids(&mut self, st: &Statements, ids: &[i64], lease_us: i64) -> QueryResult<Vec<Row>> {
        st.claim_ids
            .pg_query()
            .i64(lease_us)
            .i64s(ids.to_vec())
            .load::<Row>(self)
    }

    set_tat!();
}

#[cfg(feature = "mysql")]
impl ClaimLimited for MysqlConnection {
    fn limited_candidates(
        &mut self,
        st: &Statements,
        queue: &str,
    ) -> QueryResult<Option<Vec<Candidate>>> {
        let mut hashes: Vec<i64> = st
            .limit_hashes
            .query()
            .text(queue)
            .text(queue)
            .text(queue)
            .text(queue)
            .load::<Number>(self)?
            .into_iter()
            .map(|r| r.n)
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.is_empty() {
            return Ok(None);
        }
        // InnoDB keeps the upserted rows locked until the transaction ends:
        // a second claim of one of these keys waits here, and then reads
        // the running jobs and tats this one's commit left
        let lock = Stmt::new(&format!(
            "{}{} ON DUPLICATE KEY UPDATE h = h",
            st.limit_locks_head,
            vec!["(?)"; hashes.len()].join(", ")
        ));
        let mut query = lock.query().uncached();
        for &h in &hashes {
            query = query.i64(h);
        }
        query.execute(self)?;
        let select = Stmt::new(
            &st.limited_candidates_mysql
                .replace("{hashes}", &placeholders(hashes.len())),
        );
        let mut query = select.query().uncached().text(queue).text(queue);
        for _ in 0..2 {
            for &h in &hashes {
                query = query.i64(h);
            }
        }
        query.load::<Candidate>(self).map(Some)
    }

    fn claim_ids(&mut self, st: &Statements, ids: &[i64], lease_us: i64) -> QueryResult<Vec<Row>> {
        // a job cancelled or flushed since is no longer pending, and stays
        let select = Stmt::new(&format!(
            "{}{} FOR UPDATE",
            st.claim_select_ids_head,
            placeholders(ids.len())
        ));
        let mut query = select.query().uncached();
        for &id in ids {
            query = query.i64(id);
        }
        let rows = query.load::<RowNow>(self)?;
        claim_locked_rows(self, st, rows, lease_us)
    }

    set_tat!();
}

/// A row of [`Statements::done_and_claim`]: a claimed job, or (`done`) the
/// id of a job moved to `{done}`.
#[cfg(feature = "postgres")]
#[derive(QueryableByName, Debug)]
struct DoneOrClaimed {
    #[diesel(embed)]
    stored: Row,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    done: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    limited: bool,
}

/// A row of [`Statements::claim_marked`]: a claimed job, or (`limited`)
/// the marker of a queue with limited jobs that may start.
#[cfg(feature = "postgres")]
#[derive(QueryableByName, Debug)]
struct ClaimedOrMarker {
    #[diesel(embed)]
    stored: Row,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    limited: bool,
}

/// PostgreSQL: one statement, atomic on its own, where a transaction of a
/// move per job and a claim took a round trip each, with two more for
/// `BEGIN` and `COMMIT`.
#[cfg(feature = "postgres")]
impl DoneAndClaim for PgConnection {
    fn done_and_claim(
        &mut self,
        st: &Statements,
        completions: &[(Lease, Outcome)],
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<Option<DoneClaimed>> {
        let n = completions.len();
        let (mut ids, mut tokens) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut durations, mut results) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (lease, outcome) in completions {
            let CompletionSql::Done {
                duration_us,
                result,
            } = CompletionSql::of(outcome)
            else {
                return Ok(None);
            };
            ids.push(i64::try_from(lease.job.0).unwrap_or(-1));
            tokens.push(i64::try_from(lease.token).unwrap_or(-1));
            durations.push(duration_us);
            results.push(result);
        }
        let rows: Vec<DoneOrClaimed> = st
            .done_and_claim
            .pg_query()
            .i64s(ids.clone())
            .i64s(tokens)
            .i64s(durations)
            .opt_bytes_list(results)
            .i64s(ids.clone())
            .text(queue)
            .text(queue)
            .text(queue)
            .text(queue)
            .i64(lease_us)
            .text(queue)
            .text(queue)
            .i64(max)
            .load(self)?;
        let limited = rows.iter().any(|r| r.limited);
        let (moved, claimed): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .filter(|r| !r.limited)
            .partition(|r| r.done);
        let done = ids
            .iter()
            .map(|id| completion(usize::from(moved.iter().any(|m| m.stored.id == *id))))
            .collect();
        Ok(Some((
            done,
            claimed.into_iter().map(|r| r.stored).collect(),
            limited,
        )))
    }

    fn claim_marked(
        &mut self,
        st: &Statements,
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<Option<(Vec<Row>, bool)>> {
        let mut query = st.claim_marked.pg_query();
        for _ in 0..crate::sql::LIMITED_READY_BINDS {
            query = query.text(queue);
        }
        let rows: Vec<ClaimedOrMarker> = query
            .i64(lease_us)
            .text(queue)
            .text(queue)
            .i64(max)
            .load(self)?;
        let limited = rows.iter().any(|r| r.limited);
        Ok(Some((
            rows.into_iter()
                .filter(|r| !r.limited)
                .map(|r| r.stored)
                .collect(),
            limited,
        )))
    }
}

/// PostgreSQL: locks the ordering keys of `jobs` until the transaction ends,
/// so that a second enqueue with one of those keys waits for this one to
/// commit or roll back.
///
/// The claim takes a job only when no job with its key is running or
/// *pending with a smaller id*; it cannot see an insert that has not
/// committed. Without the lock, two enqueues of one key could commit in the
/// opposite order of their ids, and a claim that saw only the later one and
/// a claim that then saw both would run the two at once. SQLite serializes
/// writers and Redis runs one script at a time, so only PostgreSQL needs it.
/// Keys are locked by hash in a fixed order (no deadlock between batches);
/// two keys with one hash merely wait for each other.
#[cfg(feature = "postgres")]
fn lock_ordering_keys(
    conn: &mut PgConnection,
    st: &Statements,
    jobs: &[NewJob],
) -> QueryResult<()> {
    let keys: Vec<String> = jobs
        .iter()
        .filter_map(|job| {
            let key = job.key.as_deref()?;
            Some(format!("{}:{}:{key}", job.queue.len(), job.queue))
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    st.lock_keys
        .pg_query()
        .texts(keys.iter().map(String::as_str).collect())
        .execute(conn)?;
    Ok(())
}

/// PostgreSQL inserts any batch with one statement over arrays (`UNNEST`):
/// nine binds, one plan, however many jobs.
#[cfg(feature = "postgres")]
impl InsertRows for PgConnection {
    fn insert_rows(
        &mut self,
        st: &Statements,
        jobs: &[NewJob],
        durable: bool,
    ) -> QueryResult<Vec<i64>> {
        lock_ordering_keys(self, st, jobs)?;
        if let [job] = jobs {
            let (priority, attempts) = job_binds(job);
            let (at, delay) = when_binds(job.when);
            let (limit_key, limit_max) = limit_binds(job);
            let (rate_key, rate_max, rate_per) = rate_binds(job);
            let insert = if durable {
                &st.insert_one_durable
            } else {
                &st.insert_one
            };
            let id = insert
                .query()
                .text(&job.command)
                .opt_bytes(Some(&job.args))
                .text(&job.queue)
                .opt_text(job.key.as_deref())
                .i32(priority)
                .i32(attempts)
                .opt_i64(at)
                .i64(delay)
                .opt_i64(timeout_bind(job))
                .opt_text(limit_key)
                .opt_i64(limit_max)
                .opt_text(rate_key)
                .opt_i64(rate_max)
                .opt_i64(rate_per)
                .get_result::<Number>(self)?
                .n;
            return Ok(vec![id]);
        }
        let mut commands = Vec::with_capacity(jobs.len());
        let mut args = Vec::with_capacity(jobs.len());
        let mut queues = Vec::with_capacity(jobs.len());
        let mut keys = Vec::with_capacity(jobs.len());
        let mut priorities = Vec::with_capacity(jobs.len());
        let mut max_attempts = Vec::with_capacity(jobs.len());
        let mut run_ats = Vec::with_capacity(jobs.len());
        let mut delays = Vec::with_capacity(jobs.len());
        let mut timeouts = Vec::with_capacity(jobs.len());
        let mut limit_keys = Vec::with_capacity(jobs.len());
        let mut limit_maxes = Vec::with_capacity(jobs.len());
        let mut rate_keys = Vec::with_capacity(jobs.len());
        let mut rate_maxes = Vec::with_capacity(jobs.len());
        let mut rate_pers = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (priority, attempts) = job_binds(job);
            let (at, delay) = when_binds(job.when);
            commands.push(job.command.as_str());
            args.push(job.args.as_slice());
            queues.push(job.queue.as_str());
            keys.push(job.key.as_deref());
            priorities.push(priority);
            max_attempts.push(attempts);
            run_ats.push(at);
            delays.push(delay);
            timeouts.push(timeout_bind(job));
            let (limit_key, limit_max) = limit_binds(job);
            limit_keys.push(limit_key);
            limit_maxes.push(limit_max);
            let (rate_key, rate_max, rate_per) = rate_binds(job);
            rate_keys.push(rate_key);
            rate_maxes.push(rate_max);
            rate_pers.push(rate_per);
        }
        let insert = if durable {
            &st.insert_unnest_durable
        } else {
            &st.insert_unnest
        };
        let mut ids: Vec<i64> = insert
            .pg_query()
            .texts(commands)
            .bytes_list(args)
            .texts(queues)
            .opt_texts(keys)
            .i32s(priorities)
            .i32s(max_attempts)
            .opt_i64s(run_ats)
            .i64s(delays)
            .opt_i64s(timeouts)
            .opt_texts(limit_keys)
            .opt_i64s(limit_maxes)
            .opt_texts(rate_keys)
            .opt_i64s(rate_maxes)
            .opt_i64s(rate_pers)
            .load::<Number>(self)?
            .into_iter()
            .map(|r| r.n)
            .collect();
        // rows are inserted in array order, so ids grow in it
        ids.sort_unstable();
        Ok(ids)
    }
}

/// The most rows one of SQLite's batch statements takes: see
/// [`batch_parts`].
const SQLITE_BATCH_PART: usize = 64;

/// The sizes of the statements that mark, move and delete `rows` finished
/// jobs, in order. MySQL: one statement for them all, as each statement is
/// a round trip. SQLite: powers of two up to [`SQLITE_BATCH_PART`], largest
/// first, so that a connection prepares each of these few texts once and
/// keeps it in its statement cache. Running a statement costs no round trip
/// there, but preparing one does: a batch's statement holds placeholders
/// for every row, which SQLite's code generator compares with one another,
/// so that preparing a statement of `n` rows takes time that grows as
/// `n²`, and uncached it is paid by every batch.
pub(crate) fn batch_parts(dialect: crate::sql::Dialect, rows: usize) -> Vec<usize> {
    if rows == 0 {
        return Vec::new();
    }
    if dialect != crate::sql::Dialect::Sqlite {
        return vec![rows];
    }
    let mut parts = vec![SQLITE_BATCH_PART; rows / SQLITE_BATCH_PART];
    let rest = rows % SQLITE_BATCH_PART;
    parts.extend(
        (0..SQLITE_BATCH_PART.trailing_zeros())
            .rev()
            .map(|bit| 1 << bit)
            .filter(|size| rest & size != 0),
    );
    parts
}

/// Whether a batch statement of `rows` rows is kept in the connection's
/// statement cache: always on SQLite, whose sizes [`batch_parts`] keeps
/// few; elsewhere for small batches only, as each size is a prepared
/// statement of its own.
pub(crate) fn cache_batch(dialect: crate::sql::Dialect, rows: usize) -> bool {
    dialect == crate::sql::Dialect::Sqlite || rows <= 16
}

/// SQLite and MySQL: marks several jobs done in one update where each took
/// one, or in the few updates [`batch_parts`] splits them into. Returns
/// each completion, and the ids marked, to move to `{done}`.
pub(crate) fn mark_done_many<C>(
    conn: &mut C,
    st: &Statements,
    completions: &[(Lease, Outcome)],
) -> QueryResult<(Vec<Completion>, Vec<i64>)>
where
    C: Connection,
    for<'a> crate::prepared::Sql<'a>:
        diesel::query_dsl::methods::ExecuteDsl<C> + diesel::query_dsl::LoadQuery<'a, C, Number>,
{
    let mut done = Vec::with_capacity(completions.len());
    let mut marked = Vec::with_capacity(completions.len());
    let mut rest = completions;
    for size in batch_parts(st.dialect, completions.len()) {
        let (part, after) = rest.split_at(size);
        let (part_done, part_marked) = mark_done_part(conn, st, part)?;
        done.extend(part_done);
        marked.extend(part_marked);
        rest = after;
    }
    Ok((done, marked))
}

/// [`mark_done_many`] in one update. When it changed fewer rows than there
/// were outcomes (a lease was lost), the rows it marked are read back by id.
fn mark_done_part<C>(
    conn: &mut C,
    st: &Statements,
    completions: &[(Lease, Outcome)],
) -> QueryResult<(Vec<Completion>, Vec<i64>)>
where
    C: Connection,
    for<'a> crate::prepared::Sql<'a>:
        diesel::query_dsl::methods::ExecuteDsl<C> + diesel::query_dsl::LoadQuery<'a, C, Number>,
{
    let ids: Vec<i64> = completions
        .iter()
        .map(|(lease, _)| i64::try_from(lease.job.0).unwrap_or(-1))
        .collect();
    let cases = format!("CASE id{} END", " WHEN ? THEN ?".repeat(ids.len()));
    let sql = format!(
        "{}duration_us = {cases}, result = {cases} WHERE state = 1 AND id IN {} AND token = {cases}",
        st.done_many_head,
        placeholders(ids.len()),
    );
    let statement = Stmt::new(&sql);
    let mut query = statement.query();
    if !cache_batch(st.dialect, ids.len()) {
        query = query.uncached();
    }
    for ((_, outcome), &id) in completions.iter().zip(&ids) {
        if let CompletionSql::Done { duration_us, .. } = CompletionSql::of(outcome) {
            query = query.i64(id).i64(duration_us);
        }
    }
    for ((_, outcome), &id) in completions.iter().zip(&ids) {
        if let CompletionSql::Done { result, .. } = CompletionSql::of(outcome) {
            query = query.i64(id).opt_bytes(result);
        }
    }
    for &id in &ids {
        query = query.i64(id);
    }
    for ((lease, _), &id) in completions.iter().zip(&ids) {
        query = query.i64(id).i64(i64::try_from(lease.token).unwrap_or(-1));
    }
    let changed = query.execute(conn)?;
    if changed == ids.len() {
        return Ok((vec![Completion::Applied; ids.len()], ids));
    }
    let statement = Stmt::new(&format!(
        "{}{}",
        st.marked_done_head,
        placeholders(ids.len())
    ));
    let mut query = statement.query().uncached();
    for &id in &ids {
        query = query.i64(id);
    }
    let marked: Vec<i64> = query
        .load::<Number>(conn)?
        .into_iter()
        .map(|r| r.n)
        .collect();
    let done = ids
        .iter()
        .map(|id| completion(usize::from(marked.contains(id))))
        .collect();
    Ok((done, marked))
}

/// Implements [`crate::JobConnection`]'s operations for one connection type;
/// `$tx` is the method that opens a write transaction on it.
macro_rules! store_impl {
    ($conn:ty, $tx:ident) => {
        impl $crate::private::Sealed for $conn {}

        impl $crate::JobConnection for $conn {}

        impl $crate::store::Store for $conn {
            fn enqueue(
                &mut self,
                st: &$crate::sql::Statements,
                jobs: &[::outband::NewJob],
                durable: bool,
            ) -> ::diesel::QueryResult<Vec<i64>> {
                use ::diesel::connection::TransactionManager;
                use $crate::store::InsertRows;
                if $crate::store::one_statement(st, jobs)
                    && <Self as Connection>::TransactionManager::transaction_manager_status_mut(
                        self,
                    )
                    .transaction_depth()?
                    .is_none()
                {
                    // atomic and durable on its own: no BEGIN or COMMIT round
                    // trip. Inside the caller's transaction the savepoint
                    // below stays, so a failed insert leaves that
                    // transaction usable.
                    return self.insert_rows(st, jobs, durable);
                }
                self.write(|conn| conn.insert_rows(st, jobs, durable))
            }

            fn claim(
                &mut self,
                st: &$crate::sql::Statements,
                queue: &str,
                max: i64,
                lease_us: i64,
            ) -> ::diesel::QueryResult<Vec<::outband::Claimed>> {
                use $crate::store::DoneAndClaim;
                let rows = match st.dialect {
                    $crate::sql::Dialect::Mysql => $crate::store::retry_conflicts(|| {
                        self.write(|conn| conn.claim_rows(st, queue, max, lease_us))
                    })?,
                    // one statement, atomic on its own: no BEGIN/COMMIT round
                    // trips, unless it marks limited jobs that may start,
                    // which take the keys' locks, held by a transaction
                    $crate::sql::Dialect::Postgres => {
                        match self.claim_marked(st, queue, max, lease_us)? {
                            Some((rows, false)) => rows,
                            _ => $crate::store::retry_conflicts(|| {
                                self.write(|conn| conn.claim_rows(st, queue, max, lease_us))
                            })?,
                        }
                    }
                    // immediate: the write lock is taken before the snapshot
                    $crate::sql::Dialect::Sqlite => {
                        self.write(|conn| conn.claim_rows(st, queue, max, lease_us))?
                    }
                };
                Ok(self.claimed(st, queue, rows))
            }

            fn claim_unlimited(
                &mut self,
                st: &$crate::sql::Statements,
                queue: &str,
                max: i64,
                lease_us: i64,
            ) -> ::diesel::QueryResult<Vec<$crate::store::Row>> {
                use ::diesel::prelude::*;
                use $crate::store::*;
                match st.dialect {
                    $crate::sql::Dialect::Mysql => {
                        let rows: Vec<RowNow> = st
                            .claim_select
                            .query()
                            .text(queue)
                            .text(queue)
                            .i64(max)
                            .load::<RowNow>(self)?;
                        claim_locked_rows(self, st, rows, lease_us)
                    }
                    $crate::sql::Dialect::Postgres | $crate::sql::Dialect::Sqlite => st
                        .claim
                        .query()
                        .i64(lease_us)
                        .text(queue)
                        .text(queue)
                        .i64(max)
                        .load::<Row>(self),
                }
            }

            fn has_ready(
                &mut self,
                st: &$crate::sql::Statements,
                queue: &str,
            ) -> ::diesel::QueryResult<bool> {
                use ::diesel::prelude::*;
                let found = st
                    .has_ready
                    .query()
                    .text(queue)
                    .text(queue)
                    .get_result::<$crate::store::Number>(self)?;
                Ok(found.n > 0)
            }

            fn limited_ready(
                &mut self,
                st: &$crate::sql::Statements,
                queue: &str,
            ) -> ::diesel::QueryResult<bool> {
                use ::diesel::prelude::*;
                use $crate::sql::{ABOVE_EVERY_KEY, LIMIT_KEYS_WALKED};
                if st.dialect == $crate::sql::Dialect::Mysql {
                    // the keys' tests first, one key of each kind a step,
                    // and the search of a key's jobs only for open keys:
                    // statements MariaDB optimizes fast, where
                    // `limited_ready` is not
                    let mut bounds = [
                        Some(ABOVE_EVERY_KEY.to_vec()),
                        Some(ABOVE_EVERY_KEY.to_vec()),
                    ];
                    for _ in 0..LIMIT_KEYS_WALKED {
                        if bounds.iter().all(Option::is_none) {
                            return Ok(false);
                        }
                        // a kind walked to its end is bounded below every key
                        let bound = |kind: usize| bounds[kind].as_deref().unwrap_or_default();
                        let keys = st
                            .limit_keys
                            .query()
                            .text(queue)
                            .text(queue)
                            .opt_bytes(Some(bound(0)))
                            .text(queue)
                            .text(queue)
                            .opt_bytes(Some(bound(1)))
                            .load::<$crate::store::LimitKey>(self)?;
                        let mut next = [None, None];
                        for key in keys {
                            let search = if key.kind == 0 {
                                &st.limit_key_ready
                            } else {
                                &st.rate_key_ready
                            };
                            if key.open != 0
                                && search
                                    .query()
                                    .text(queue)
                                    .text(queue)
                                    .text(&key.k)
                                    .get_result::<$crate::store::Number>(self)?
                                    .n
                                    > 0
                            {
                                return Ok(true);
                            }
                            if key.more != 0 {
                                next[usize::from(key.kind != 0)] = Some(key.k.into_bytes());
                            }
                        }
                        bounds = next;
                    }
                    if bounds.iter().all(Option::is_none) {
                        return Ok(false);
                    }
                    // more keys than walked: every key in one statement
                }
                let mut query = st.limited_ready.query();
                for _ in 0..$crate::sql::LIMITED_READY_BINDS {
                    query = query.text(queue);
                }
                let found = query.get_result::<$crate::store::Number>(self)?;
                Ok(found.n > 0)
            }

            fn next_turn(
                &mut self,
                st: &$crate::sql::Statements,
                queue: &str,
            ) -> ::diesel::QueryResult<Option<::std::time::Duration>> {
                use ::diesel::prelude::*;
                let found = st
                    .next_turn
                    .query()
                    .text(queue)
                    .text(queue)
                    .get_result::<$crate::store::MaybeNumber>(self)?;
                Ok(found
                    .n
                    .map(|us| ::std::time::Duration::from_micros(us.max(0).unsigned_abs())))
            }

            fn claimed(
                &mut self,
                st: &$crate::sql::Statements,
                queue: &str,
                mut rows: Vec<$crate::store::Row>,
            ) -> Vec<::outband::Claimed> {
                use ::diesel::prelude::*;
                use $crate::store::*;
                claim_order(&mut rows);
                let mut claimed = Vec::with_capacity(rows.len());
                for row in &rows {
                    match row.to_claimed() {
                        Ok(job) => claimed.push(job),
                        Err(reason) => {
                            // held under this claim's lease: no one else touches it
                            let reason = format!("{MALFORMED}{reason}");
                            ::log::error!("job {} of queue {queue}: {reason}", row.id);
                            // on MySQL a recovery step's range update can
                            // pick this update as a deadlock's victim: it is
                            // run again, not left to wait out the lease and
                            // end dead with the lease's reason instead
                            let marked = retry_conflicts(|| {
                                st.mark_malformed
                                    .query()
                                    .text(&reason)
                                    .i64(row.id)
                                    .execute(self)
                            });
                            if let Err(error) = marked {
                                // its lease expires and the next claim finds it again
                                ::log::error!("moving job {} to dead failed: {error}", row.id);
                            }
                        }
                    }
                }
                claimed
            }

            fn complete_many(
                &mut self,
                st: &$crate::sql::Statements,
                completions: &[(::outband::Lease, ::outband::Outcome)],
            ) -> ::diesel::QueryResult<Vec<::outband::Completion>> {
                let postgres = st.dialect == $crate::sql::Dialect::Postgres;
                $crate::store::retry_conflicts(|| {
                    if completions.len() == 1 && postgres {
                        // one statement, atomic on its own
                        self.record(st, completions)
                    } else {
                        self.write(|conn| conn.record(st, completions))
                    }
                })
            }

            fn complete_and_claim(
                &mut self,
                st: &$crate::sql::Statements,
                completions: &[(::outband::Lease, ::outband::Outcome)],
                queue: &str,
                max: i64,
                lease_us: i64,
            ) -> ::diesel::QueryResult<(Vec<::outband::Completion>, Vec<::outband::Claimed>)> {
                use $crate::store::DoneAndClaim;
                // PostgreSQL's one statement claims unlimited jobs only: when
                // it marks limited jobs pending, it claimed nothing, and a
                // transaction claims next, counting the slots the completions
                // freed
                if st.dialect == $crate::sql::Dialect::Postgres {
                    if let Some((done, rows, limited)) = $crate::store::retry_conflicts(|| {
                        self.done_and_claim(st, completions, queue, max, lease_us)
                    })? {
                        if !limited {
                            return Ok((done, self.claimed(st, queue, rows)));
                        }
                        let rows = $crate::store::retry_conflicts(|| {
                            self.write(|conn| conn.claim_rows(st, queue, max, lease_us))
                        })?;
                        return Ok((done, self.claimed(st, queue, rows)));
                    }
                }
                let (done, rows) = $crate::store::retry_conflicts(|| {
                    self.write(|conn| {
                        let done = conn.record(st, completions)?;
                        Ok((done, conn.claim_rows(st, queue, max, lease_us)?))
                    })
                })?;
                Ok((done, self.claimed(st, queue, rows)))
            }

            fn record(
                &mut self,
                st: &$crate::sql::Statements,
                completions: &[(::outband::Lease, ::outband::Outcome)],
            ) -> ::diesel::QueryResult<Vec<::outband::Completion>> {
                use ::diesel::prelude::*;
                use $crate::store::*;
                let postgres = st.dialect == $crate::sql::Dialect::Postgres;
                let mut done = Vec::with_capacity(completions.len());
                // SQLite and MySQL: jobs marked done here, moved to `{done}` below
                let mut to_move = Vec::new();
                let all_done = completions
                    .iter()
                    .all(|(_, outcome)| matches!(outcome, ::outband::Outcome::Done { .. }));
                // SQLite and MySQL: several outcomes, all done, take one
                // update; any other batch, a statement per outcome
                let mut one_by_one = completions;
                if !postgres && all_done && completions.len() > 1 {
                    (done, to_move) = mark_done_many(self, st, completions)?;
                    one_by_one = &[];
                }
                for (lease, outcome) in one_by_one {
                    let id = i64::try_from(lease.job.0).unwrap_or(-1);
                    let token = i64::try_from(lease.token).unwrap_or(-1);
                    let n = match CompletionSql::of(outcome) {
                        // PostgreSQL: the row moves in one statement
                        CompletionSql::Done {
                            duration_us,
                            result,
                        } if postgres => st
                            .done
                            .query()
                            .i64(id)
                            .i64(token)
                            .i64(duration_us)
                            .opt_bytes(result)
                            .execute(self)?,
                        CompletionSql::Done {
                            duration_us,
                            result,
                        } => {
                            let n = st
                                .done
                                .query()
                                .i64(duration_us)
                                .opt_bytes(result)
                                .i64(id)
                                .i64(token)
                                .execute(self)?;
                            if n > 0 {
                                to_move.push(id);
                            }
                            n
                        }
                        CompletionSql::Retry { delay_us, error } => st
                            .retry
                            .query()
                            .i64(delay_us)
                            .text(error)
                            .i64(id)
                            .i64(token)
                            .execute(self)?,
                        CompletionSql::Dead { error } => st
                            .dead
                            .query()
                            .text(error)
                            .i64(id)
                            .i64(token)
                            .execute(self)?,
                        CompletionSql::Release => {
                            st.release.query().i64(id).i64(token).execute(self)?
                        }
                    };
                    done.push(completion(n));
                }
                // rows this transaction holds: nothing else can change them
                let mut rest = to_move.as_slice();
                for size in batch_parts(st.dialect, to_move.len()) {
                    let (part, after) = rest.split_at(size);
                    for head in [&st.move_done_head, &st.delete_done_head] {
                        let sql = format!("{head}{}", placeholders(part.len()));
                        let statement = $crate::prepared::Stmt::new(&sql);
                        let mut query = statement.query();
                        if !cache_batch(st.dialect, part.len()) {
                            query = query.uncached();
                        }
                        for &id in part {
                            query = query.i64(id);
                        }
                        query.execute(self)?;
                    }
                    rest = after;
                }
                Ok(done)
            }

            fn write<T>(
                &mut self,
                f: impl FnOnce(&mut Self) -> ::diesel::QueryResult<T>,
            ) -> ::diesel::QueryResult<T> {
                use ::diesel::connection::TransactionManager;
                let status =
                    <Self as Connection>::TransactionManager::transaction_manager_status_mut(self);
                if status.transaction_depth()?.is_some() {
                    // inside the caller's transaction: a savepoint
                    self.transaction(f)
                } else {
                    self.$tx(f)
                }
            }
        }
    };
}

/// The operations [`crate::DatabaseQueue`] runs on one connection.
pub(crate) trait Store:
    Connection + InsertRows + DoneAndClaim + ClaimLimited + Sized
{
    /// Inserts `jobs`, all or none, and returns their ids in order: one
    /// statement where [`one_statement`] allows it and no transaction is
    /// open, else one transaction (a savepoint inside the caller's).
    /// `durable` makes the commit wait for the disk where the session would
    /// not (PostgreSQL pool connections).
    fn enqueue(&mut self, st: &Statements, jobs: &[NewJob], durable: bool)
    -> QueryResult<Vec<i64>>;

    /// Claims up to `max` ready jobs of `queue`; malformed rows go to `dead`.
    fn claim(
        &mut self,
        st: &Statements,
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<Vec<Claimed>>;

    /// The claim's own statements, inside a transaction the caller opened:
    /// the rows claimed. Limited jobs first, when the queue has some that
    /// may start ([`limited_ready`](Self::limited_ready)), in claim order;
    /// then unlimited ones, up to `max` in all.
    fn claim_rows(
        &mut self,
        st: &Statements,
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<Vec<Row>> {
        let mut rows = if self.limited_ready(st, queue)? {
            self.claim_limited(st, queue, max, lease_us)?
        } else {
            Vec::new()
        };
        let left = max.saturating_sub(i64::try_from(rows.len()).unwrap_or(i64::MAX));
        if left > 0 {
            rows.extend(self.claim_unlimited(st, queue, left, lease_us)?);
        }
        Ok(rows)
    }

    /// The claim of jobs without a concurrency limit, inside a transaction
    /// the caller opened (or, on PostgreSQL, as one statement).
    fn claim_unlimited(
        &mut self,
        st: &Statements,
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<Vec<Row>>;

    /// Whether `queue` has a ready limited job that may start (its key has
    /// a free slot, its turn has come), as far as a read without locks can
    /// tell.
    fn limited_ready(&mut self, st: &Statements, queue: &str) -> QueryResult<bool>;

    /// How long until the turn of the first ready job of `queue` whose
    /// rate limit does not let it start yet; `None` when it has none.
    fn next_turn(&mut self, st: &Statements, queue: &str) -> QueryResult<Option<Duration>>;

    /// Whether `queue` has a job that [`claim`](Self::claim) would take now:
    /// never while the queue is paused.
    fn has_ready(&mut self, st: &Statements, queue: &str) -> QueryResult<bool>;

    /// The claimed rows in claim order as jobs; malformed rows go to `dead`.
    fn claimed(&mut self, st: &Statements, queue: &str, rows: Vec<Row>) -> Vec<Claimed>;

    /// Records outcomes in one transaction.
    fn complete_many(
        &mut self,
        st: &Statements,
        completions: &[(Lease, Outcome)],
    ) -> QueryResult<Vec<Completion>>;

    /// Records outcomes and claims up to `max` jobs of `queue` in one
    /// transaction: one commit where there were two.
    fn complete_and_claim(
        &mut self,
        st: &Statements,
        completions: &[(Lease, Outcome)],
        queue: &str,
        max: i64,
        lease_us: i64,
    ) -> QueryResult<(Vec<Completion>, Vec<Claimed>)>;

    /// The statements that record outcomes, inside a transaction the caller
    /// opened (or, for one outcome on PostgreSQL, as one statement).
    fn record(
        &mut self,
        st: &Statements,
        completions: &[(Lease, Outcome)],
    ) -> QueryResult<Vec<Completion>>;

    /// Runs `f` in a write transaction.
    fn write<T>(&mut self, f: impl FnOnce(&mut Self) -> QueryResult<T>) -> QueryResult<T>;
}

#[cfg(feature = "sqlite")]
store_impl!(SqliteConnection, immediate_transaction);
#[cfg(feature = "postgres")]
store_impl!(PgConnection, transaction);
#[cfg(feature = "mysql")]
store_impl!(MysqlConnection, transaction);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_batches_split_into_few_sizes_that_cover_them_in_order() {
        for rows in 0..300 {
            let parts = batch_parts(crate::sql::Dialect::Sqlite, rows);
            assert_eq!(parts.iter().sum::<usize>(), rows, "{rows}: {parts:?}");
            assert!(
                parts
                    .iter()
                    .all(|p| p.is_power_of_two() && *p <= SQLITE_BATCH_PART),
                "{rows}: {parts:?}"
            );
            assert!(parts.windows(2).all(|w| w[0] >= w[1]), "{rows}: {parts:?}");
        }
        assert_eq!(
            batch_parts(crate::sql::Dialect::Sqlite, 133),
            [64, 64, 4, 1]
        );
        assert_eq!(batch_parts(crate::sql::Dialect::Mysql, 133), [133]);
        assert!(batch_parts(crate::sql::Dialect::Mysql, 0).is_empty());
        assert!(cache_batch(crate::sql::Dialect::Sqlite, 64));
        assert!(!cache_batch(crate::sql::Dialect::Mysql, 17));
    }

    #[test]
    fn key_locks_are_sorted_distinct_and_only_for_keyed_jobs() {
        let job = |queue: &str, key: Option<&str>| {
            let job = NewJob::new("c", vec![1]).queue(queue);
            match key {
                Some(key) => job.key(key),
                None => job,
            }
        };
        let jobs = [
            job("q", Some("b")),
            job("q", None),
            job("q", Some("a")),
            job("q", Some("b")),
            job("r", Some("a")),
        ];
        let rows = key_lock_rows(&jobs);
        assert_eq!(rows.len(), 3, "one row per queue and key: {rows:?}");
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "sorted: {rows:?}");
        assert!(rows.iter().all(|r| (0..65_536).contains(r)));
        assert!(key_lock_rows(&[job("q", None)]).is_empty());
    }

    #[test]
    fn only_keyless_batches_that_fit_one_insert_are_one_statement() {
        let job = || NewJob::new("c", vec![1]).queue("q");
        let plain = [job(), job()];
        let keyed = [job(), job().key("k")];
        let big: Vec<NewJob> = (0..=INSERT_CHUNK).map(|_| job()).collect();
        let st = |dialect| Statements::new(dialect, "t_");
        let postgres = st(crate::sql::Dialect::Postgres);
        assert!(one_statement(&postgres, &plain));
        assert!(
            one_statement(&postgres, &big),
            "one UNNEST, whatever the size"
        );
        assert!(!one_statement(&postgres, &keyed), "keys are locked first");
        let mysql = st(crate::sql::Dialect::Mysql);
        assert!(one_statement(&mysql, &plain));
        assert!(!one_statement(&mysql, &big), "more than one INSERT");
        assert!(!one_statement(&mysql, &keyed));
        assert!(!one_statement(&st(crate::sql::Dialect::Sqlite), &plain));
    }

    /// A queue on PostgreSQL with tables of its own, its statements, and a
    /// connection of the test's own whose session commits without waiting
    /// for the WAL flush, as the pool's sessions do.
    #[cfg(feature = "postgres")]
    fn pg_queue() -> Option<(crate::DatabaseQueue, Statements, PgConnection)> {
        use diesel::connection::SimpleConnection;
        let url = outband_testkit::pg_url();
        let queue = match crate::DatabaseQueue::builder(&url)
            .prefix(format!("{}_", outband_testkit::unique_name("s")))
            .temporary(true)
            .open()
        {
            Ok(queue) => queue,
            Err(error) => return outband_testkit::skip_or_fail("PostgreSQL", &error),
        };
        let st = Statements::new(crate::sql::Dialect::Postgres, queue.prefix());
        let mut conn = PgConnection::establish(&url).expect("a connection");
        conn.batch_execute("SET synchronous_commit TO OFF")
            .expect("session setting");
        Some((queue, st, conn))
    }

    #[cfg(feature = "postgres")]
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        s: String,
    }

    #[cfg(feature = "postgres")]
    fn synchronous_commit(conn: &mut PgConnection) -> String {
        diesel::sql_query("SELECT current_setting('synchronous_commit') AS s")
            .get_result::<Setting>(conn)
            .expect("the setting")
            .s
    }

    /// The one-statement enqueue turns `synchronous_commit` on for its own
    /// transaction only (the server reads it when that transaction commits)
    /// and keeps each job's priority and schedule.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_keyless_enqueue_commits_durably_in_one_statement() {
        use outband::BaseQueue;
        let Some((queue, st, mut conn)) = pg_queue() else {
            return;
        };
        let job = || NewJob::new("c", vec![1]).queue("fast");
        // one job at a time, then a batch: both forms of the insert
        let mut ids = Vec::new();
        for one in [
            job(),
            job().priority(5),
            job().when(Duration::from_secs(3600)),
        ] {
            ids.extend(conn.enqueue(&st, &[one], true).expect("enqueue"));
        }
        let batch = [job().priority(-1), job().priority(-1)];
        ids.extend(conn.enqueue(&st, &batch, true).expect("enqueue"));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(
            synchronous_commit(&mut conn),
            "off",
            "set for the statement's own transaction, not the session"
        );
        for jobs in [vec![job()], vec![job(), job()]] {
            let mut within = String::new();
            let rolled_back = conn.transaction(|conn| {
                conn.insert_rows(&st, &jobs, true)?;
                within = synchronous_commit(conn);
                // the queue keeps only the jobs above
                Err::<(), _>(diesel::result::Error::RollbackTransaction)
            });
            assert!(rolled_back.is_err());
            assert_eq!(
                within, "on",
                "the transaction the insert ran in commits durably"
            );
        }

        let claimed = queue
            .claim("fast", 10, Duration::from_secs(60))
            .expect("claim");
        let claimed: Vec<i64> = claimed.iter().map(|c| c.job.id.0 as i64).collect();
        assert_eq!(
            claimed,
            [ids[1], ids[0], ids[3], ids[4]],
            "by priority, then in order; the scheduled job waits"
        );
        let scheduled = queue
            .job(JobId(ids[2] as u64))
            .expect("job")
            .expect("stored");
        assert!(scheduled.run_at > SystemTime::now() + Duration::from_secs(3000));
    }

    /// Every insert of jobs notifies the channel idle consumers listen on,
    /// itself, when its transaction commits: one job and a batch on their
    /// own, a keyed job (its keys' transaction), and jobs enqueued in the
    /// caller's transaction, heard only once that commits and never if it
    /// rolls back. The jobs table has no insert trigger doing it instead.
    #[cfg(feature = "postgres")]
    #[test]
    fn every_insert_of_jobs_notifies_listeners_at_its_commit() {
        use diesel::connection::SimpleConnection;
        use outband::BaseQueue;
        let Some((queue, _, mut conn)) = pg_queue() else {
            return;
        };
        let mut listener = PgConnection::establish(&outband_testkit::pg_url()).expect("listener");
        listener
            .batch_execute(&format!("LISTEN \"{}jobs\"", queue.prefix()))
            .expect("listen");
        let triggers = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM pg_trigger WHERE NOT tgisinternal \
             AND tgrelid = CAST($1 AS regclass) AND tgtype & 4 = 4",
        )
        .bind::<Text, _>(format!("{}jobs", queue.prefix()))
        .get_result::<Number>(&mut conn)
        .expect("the triggers")
        .n;
        assert_eq!(triggers, 0, "no trigger fires on an insert");
        let hears = |what: &str, listener: &mut PgConnection| {
            let mut heard = false;
            outband_testkit::wait_until(what, None, || {
                heard = heard || listener.notifications_iter().next().is_some();
                heard
            });
            // what else this commit notified, if the server split it
            while listener.notifications_iter().next().is_some() {}
        };
        let job = || NewJob::new("c", vec![1]).queue("heard");
        queue.enqueue(job()).expect("enqueue");
        hears("one job's notification", &mut listener);
        queue.enqueue_many(vec![job(), job()]).expect("enqueue");
        hears("a batch's notification", &mut listener);
        queue.enqueue(job().key("k")).expect("enqueue");
        hears("a keyed job's notification", &mut listener);

        conn.transaction(|conn| {
            queue.enqueue_in(conn, &[job()]).expect("enqueue_in");
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                listener.notifications_iter().next().is_none(),
                "nothing is heard before the commit"
            );
            Ok::<_, diesel::result::Error>(())
        })
        .expect("commit");
        hears("the committed transaction's notification", &mut listener);
        let rolled_back = conn.transaction(|conn| {
            queue.enqueue_in(conn, &[job()]).expect("enqueue_in");
            Err::<(), _>(diesel::result::Error::RollbackTransaction)
        });
        assert!(rolled_back.is_err());
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            listener.notifications_iter().next().is_none(),
            "a rolled-back enqueue notifies no one"
        );
    }

    /// A batch that fails in the database stores none of its jobs.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_failed_keyless_batch_stores_nothing() {
        use outband::BaseQueue;
        let Some((queue, _, _)) = pg_queue() else {
            return;
        };
        let good = NewJob::new("c", vec![1]).queue("whole");
        // PostgreSQL text cannot hold a NUL
        let bad = NewJob::new("c\0", vec![1]).queue("whole");
        assert!(queue.enqueue_many(vec![good, bad]).is_err());
        assert_eq!(queue.len("whole").expect("len"), 0);
    }

    /// A keyed job still takes its key's lock in a transaction of its own: an
    /// enqueue of it waits while another transaction holds the key.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_keyed_enqueue_waits_for_its_key() {
        use outband::BaseQueue;
        use std::sync::mpsc;
        let Some((queue, _, mut holder)) = pg_queue() else {
            return;
        };
        let (locked_tx, locked_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                holder
                    .transaction(|conn| {
                        // the lock `lock_ordering_keys` takes for key `k` of queue `q`
                        diesel::sql_query(format!(
                            "SELECT pg_advisory_xact_lock({}, hashtext('1:q:k'))",
                            crate::sql::KEY_LOCK_CLASS
                        ))
                        .execute(conn)?;
                        locked_tx.send(()).expect("send");
                        release_rx.recv().expect("told to release");
                        Ok::<_, diesel::result::Error>(())
                    })
                    .expect("the holder's transaction");
            });
            locked_rx.recv().expect("the key is held");
            let queue = &queue;
            scope.spawn(move || {
                let id = queue.enqueue(NewJob::new("c", vec![1]).queue("q").key("k"));
                done_tx.send(id.expect("enqueue")).expect("send");
            });
            assert!(
                done_rx.recv_timeout(Duration::from_millis(300)).is_err(),
                "the keyed enqueue went ahead of the key's holder"
            );
            release_tx.send(()).expect("send");
            done_rx.recv().expect("the keyed enqueue ends");
        });
        assert_eq!(queue.len("q").expect("len"), 1);
    }

    /// A connection given back after a wait no longer listens: the server
    /// signals listening sessions at every enqueue's commit.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_waiting_connection_listens_only_while_it_waits() {
        use outband::BaseQueue;
        let Some((queue, _, mut observer)) = pg_queue() else {
            return;
        };
        queue
            .wait(&["idle".to_owned()], Duration::ZERO)
            .expect("wait");
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let unlistened = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE state = 'idle' AND query = 'UNLISTEN \"{}jobs\"'",
            queue.prefix()
        ))
        .get_result::<Count>(&mut observer)
        .expect("count")
        .n;
        assert_eq!(unlistened, 1, "the waiter's connection stopped listening");
    }

    /// MySQL: a keyless batch's ids, read with `LAST_INSERT_ID()` outside a
    /// transaction, are its jobs' own.
    #[cfg(feature = "mysql")]
    #[test]
    fn a_keyless_mysql_batch_gets_its_own_ids() {
        use outband::BaseQueue;
        let url = outband_testkit::mysql_url();
        let queue = match crate::DatabaseQueue::builder(&url)
            .prefix(format!("{}_", outband_testkit::unique_name("s")))
            .temporary(true)
            .open()
        {
            Ok(queue) => queue,
            Err(error) => return outband_testkit::skip_or_fail("MySQL", &error).unwrap_or(()),
        };
        let jobs: Vec<NewJob> = (0..3u8)
            .map(|i| NewJob::new("c", vec![i]).queue("ids"))
            .collect();
        let ids = queue.enqueue_many(jobs).expect("enqueue");
        for (i, id) in ids.into_iter().enumerate() {
            let job = queue.job(id).expect("job").expect("stored");
            assert_eq!(job.args, vec![i as u8]);
        }
    }

    /// A real PostgreSQL deadlock: two transactions that lock two rows in
    /// opposite orders. The server ends one of them; `retry_conflicts` runs
    /// it again and both commit, in three runs between them.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_postgres_deadlock_victim_is_run_again() {
        use diesel::connection::SimpleConnection;
        use diesel::{Connection, PgConnection, RunQueryDsl};
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::{Arc, Barrier};

        let url = outband_testkit::pg_url();
        let mut setup = match PgConnection::establish(&url) {
            Ok(conn) => conn,
            Err(error) => return outband_testkit::skip_or_fail("PostgreSQL", &error).unwrap_or(()),
        };
        let table = outband_testkit::unique_name("deadlock");
        setup
            .batch_execute(&format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, n INT); \
                 INSERT INTO {table} VALUES (1, 0), (2, 0)"
            ))
            .expect("a table of two rows");
        let runs = Arc::new(AtomicU32::new(0));
        // both hold their first row before either asks for its second
        let both_hold = Arc::new(Barrier::new(2));
        let transaction = |first: i32, second: i32| {
            let (url, table) = (url.clone(), table.clone());
            let (runs, both_hold) = (Arc::clone(&runs), Arc::clone(&both_hold));
            std::thread::spawn(move || {
                let mut conn = PgConnection::establish(&url).expect("a connection");
                retry_conflicts(|| {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    conn.transaction(|conn| {
                        let bump = |conn: &mut PgConnection, id: i32| {
                            diesel::sql_query(format!(
                                "UPDATE {table} SET n = n + 1 WHERE id = {id}"
                            ))
                            .execute(conn)
                        };
                        bump(conn, first)?;
                        if run < 2 {
                            both_hold.wait();
                        }
                        bump(conn, second)
                    })
                })
            })
        };
        let one = transaction(1, 2);
        let other = transaction(2, 1);
        let results = [
            one.join().expect("a thread"),
            other.join().expect("a thread"),
        ];
        setup
            .batch_execute(&format!("DROP TABLE {table}"))
            .expect("dropping the table");
        for result in results {
            assert_eq!(result.expect("both commit in the end"), 1);
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "the deadlock's victim ran again, once"
        );
    }
}
