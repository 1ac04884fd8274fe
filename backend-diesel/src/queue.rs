//! [`DatabaseQueue`]: the pool, opening by URL, and the `BaseQueue` methods.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "postgres")]
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::MigrationHarness;
use outband::backend::fate;
use outband::backend::stats::{THROUGHPUT_WINDOW, nearest_rank, throughput};
use outband::backend::url::{hide_password, scrub_password, take_params, whole_number};
use outband::{
    BaseQueue, CONSUMER_FORGET_AFTER, CancelFeed, Cancellation, Capabilities, Claimed, Completion,
    Consumer, ConsumerInfo, Enqueued, Error, Heartbeat, Job, JobId, JobPage, JobQuery, JobState,
    Lease, NewJob, Outcome, Progress, QueueStats, Recovered,
};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::JobConnection;
#[cfg(feature = "postgres")]
use crate::notify::{Ends, PgCancelFeed};
use crate::prepared::Stmt;
use crate::schema::Schema;
use crate::sql::{Dialect, Statements, validate_prefix};
use crate::store::{
    ConsumerRow, Holder, INSERT_CHUNK, InsertRows, LeaseRow, MaybeNumber, Name, Number, PlanLine,
    PlanRows, Row, RunTimes, StateCode, StateCount, Store, code_of, completion, epoch_micros,
    micros, placeholders, retry_conflicts, state_of, time_of,
};
#[cfg(any(feature = "sqlite", feature = "mysql"))]
use crate::wake::Wake;

/// The URL a new user's queue lives at: a SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://outband.db";

/// How long finished jobs are kept by default before
/// [`purge`](BaseQueue::purge) removes them: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The table prefix by default.
const DEFAULT_PREFIX: &str = "outband_";

/// How long SQLite waits for the write lock before giving up.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// A [`BaseQueue`] in an SQL database: SQLite, PostgreSQL or MySQL/MariaDB.
///
/// A cheap handle to a connection pool: clone it freely; every clone shares
/// the pool. See the [crate documentation](crate) for how each part of the
/// contract is kept.
#[derive(Clone)]
pub struct DatabaseQueue {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pools,
    st: Statements,
    schema: Schema,
    /// The URL with any password hidden, for `Debug`.
    shown_url: String,
    temporary: bool,
    retention: Duration,
    #[cfg(feature = "postgres")]
    listen: Option<Listen>,
    /// PostgreSQL: the waits for awaited jobs' ends.
    #[cfg(feature = "postgres")]
    ends: Option<Arc<Ends>>,
    /// SQLite and MySQL wake-ups; `None` on PostgreSQL, which listens.
    #[cfg(any(feature = "sqlite", feature = "mysql"))]
    wake: Option<Arc<Wake>>,
}

enum Pools {
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    #[cfg(feature = "postgres")]
    Postgres(Pool<ConnectionManager<PgConnection>>),
    #[cfg(feature = "mysql")]
    Mysql(Pool<ConnectionManager<MysqlConnection>>),
}

/// Runs `$body` with `$conn` bound to a pooled connection, whatever the database.
macro_rules! with_conn {
    ($inner:expr, $conn:ident => $body:expr) => {
        match &$inner.pool {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => {
                let mut guard = pool.get().map_err(Error::unavailable)?;
                let $conn = &mut *guard;
                $body
            }
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let mut guard = pool.get().map_err(Error::unavailable)?;
                let $conn = &mut *guard;
                $body
            }
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => {
                let mut guard = pool.get().map_err(Error::unavailable)?;
                let $conn = &mut *guard;
                $body
            }
        }
    };
}

impl fmt::Debug for DatabaseQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseQueue")
            .field("url", &self.inner.shown_url)
            .field("prefix", &self.inner.schema.prefix)
            .finish_non_exhaustive()
    }
}

/// Maps a diesel error: a lost or unreachable server is
/// [`Error::Unavailable`], anything else [`Error::Backend`].
pub(crate) fn db_error(error: DieselError) -> Error {
    if is_unavailable(&error) {
        Error::unavailable(error)
    } else {
        Error::backend(error)
    }
}

/// Whether `error` says the server is lost or unreachable. A commit that
/// fails with the connection, and the rollback that then fails too (MySQL's
/// "Server has gone away"), is judged by the errors it wraps.
fn is_unavailable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            [
                "server closed the connection",
                // libpq's words for a lost connection over SSL, and for a
                // socket that failed
                "ssl connection has been closed",
                "ssl syscall error",
                "could not receive data from server",
                "could not send data to server",
                "terminating connection",
                "connection to server",
                "no connection to the server",
                "lost connection",
                "gone away",
                "can't connect",
                "database is locked",
                "database is busy",
                "the database system is",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        DieselError::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => is_unavailable(commit_error) || is_unavailable(rollback_error),
        _ => false,
    }
}

/// Maps a failure to connect to `url`: a URL the driver cannot parse is
/// [`Error::Config`], anything else [`Error::Unavailable`]. The driver's
/// message may quote the URL, or a piece of it, password included (libpq
/// does), so the password is scrubbed from it first.
pub(crate) fn conn_error(url: &str, error: &ConnectionError) -> Error {
    let message = scrub_password(&error.to_string(), url);
    match error {
        ConnectionError::InvalidConnectionUrl(_) => Error::Config(message),
        _ => Error::unavailable(message),
    }
}

/// Settings applied to every new pooled connection.
#[derive(Debug, Clone, Copy)]
struct Setup;

#[cfg(feature = "sqlite")]
impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        sqlite_setup(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_setup(conn: &mut SqliteConnection) -> QueryResult<()> {
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL;"
    ))
}

/// Puts the file in WAL mode. The busy timeout does not cover this pragma:
/// while other processes open the same fresh file, SQLite may answer
/// "database is locked" at once, so it is tried again until the busy timeout
/// has passed.
#[cfg(feature = "sqlite")]
fn sqlite_wal(conn: &mut SqliteConnection) -> QueryResult<()> {
    let deadline = std::time::Instant::now() + Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS.into());
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(DieselError::DatabaseError(_, info))
                if info.message().contains("locked") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(feature = "postgres")]
impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        // Claims and outcomes need not wait for the WAL flush: one lost in a
        // database crash only runs a job again (at least once). Enqueues set
        // it back on for their own transaction.
        //
        // Every statement is prepared once and run with its generic plan,
        // the plan its indexes and its text are written for. Left to choose,
        // the server plans the statement that completes jobs and claims
        // afresh on every call (its generic plan looks dearer than a plan for
        // one array's values), which took 0.5 ms of each call.
        //
        // A generic plan is made at the statement's first call, often on a
        // new, near-empty table, and kept: left to weigh a sequential scan
        // of what looks like a few pages, the server would still scan the
        // whole table for the claim's update once it holds thousands of
        // jobs. No statement here is meant to scan a table: with sequential
        // scans off, a plan made on an empty table takes the indexes the
        // statement was written for.
        conn.batch_execute(
            "SET synchronous_commit TO OFF; SET plan_cache_mode TO force_generic_plan; \
             SET enable_seqscan TO OFF",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[cfg(feature = "mysql")]
impl CustomizeConnection<MysqlConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut MysqlConnection) -> Result<(), diesel::r2d2::Error> {
        mysql_setup(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

#[cfg(feature = "mysql")]
fn mysql_setup(conn: &mut MysqlConnection) -> QueryResult<()> {
    // READ COMMITTED: the claim's SKIP LOCKED select locks only the rows it
    // returns, with no gap locks that would hold up enqueues.
    conn.batch_execute(
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; SET SESSION time_zone = '+00:00';",
    )
}

/// Where a URL leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    SqliteFile(String),
    SqliteMemory,
    Postgres(String),
    Mysql(String),
}

fn parse_url(url: &str) -> Result<Target, Error> {
    let bad = |why: &str| Error::Config(format!("`{}`: {why}", hide_password(url)));
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Target::SqliteMemory);
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL (expected scheme://…)"))?;
    match scheme {
        "sqlite" => {
            if rest.is_empty() {
                return Err(bad("no database file (sqlite://path/to/file.db)"));
            }
            Ok(Target::SqliteFile(rest.to_owned()))
        }
        "postgres" | "postgresql" => Ok(Target::Postgres(url.to_owned())),
        "mysql" => Ok(Target::Mysql(url.to_owned())),
        "mariadb" => Ok(Target::Mysql(format!("mysql://{rest}"))),
        _ => Err(bad("not an SQL URL (sqlite://, postgres://, mysql://)")),
    }
}

/// The settings a URL's query may carry, besides what the driver reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlSettings {
    prefix: Option<String>,
    retention: Option<Duration>,
}

/// A URL split into what the driver gets and what outband reads.
fn split_url(url: &str) -> Result<(String, UrlSettings), Error> {
    let (address, params) = take_params(url, &["prefix", "retention"]);
    let mut settings = UrlSettings::default();
    for (name, value) in params {
        if name == "prefix" {
            settings.prefix = Some(value.to_owned());
        } else {
            let secs = whole_number(url, name, value)?;
            settings.retention = Some(Duration::from_secs(secs));
        }
    }
    Ok((address, settings))
}

fn feature_missing(feature: &str, url: &str) -> Error {
    Error::Config(format!(
        "`{}` needs outband-diesel's `{feature}` feature",
        hide_password(url)
    ))
}

/// How to open a [`DatabaseQueue`]: URL, table prefix, pool size, migrations.
///
/// ```
/// # fn main() -> Result<(), outband::Error> {
/// let backend = outband_diesel::DatabaseQueue::builder("sqlite::memory:")
///     .prefix("billing_")
///     .max_connections(4)
///     .open()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Builder {
    url: String,
    prefix: String,
    max_connections: u32,
    connect_timeout: Duration,
    migrate: bool,
    temporary: bool,
    retention: Duration,
}

/// Shows the URL with its password hidden.
impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("url", &hide_password(&self.url))
            .field("prefix", &self.prefix)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("migrate", &self.migrate)
            .field("temporary", &self.temporary)
            .field("retention", &self.retention)
            .finish()
    }
}

impl Builder {
    /// The table prefix: tables are `<prefix>jobs`, `<prefix>done`,
    /// `<prefix>ticks` and `<prefix>paused` (and on MySQL `<prefix>keys`).
    /// Default `outband_`. It must be ASCII letters, digits and `_`, not
    /// starting with a digit, at most 21 characters; [`open`](Self::open)
    /// refuses anything else.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most connections the pool opens. Default 10; give a consumer its
    /// processor's threads plus two (the dispatcher and the manager). An
    /// in-memory SQLite database always has one.
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a call waits for a pooled connection, or for a new one to be
    /// made, before it is [`Error::Unavailable`]. Default 5 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether [`open`](Self::open) runs the embedded migrations. Default
    /// `true`; operators who migrate themselves turn it off and call
    /// [`DatabaseQueue::migrate`].
    #[must_use]
    pub fn run_migrations(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How long finished jobs keep their timings before
    /// [`DatabaseQueue::purge_finished`] removes them. Default
    /// [`DEFAULT_RETENTION`], 7 days.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Drops the tables when the last handle to the queue is dropped. For
    /// tests that each use a prefix of their own. Default `false`.
    #[must_use]
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Connects, migrates (unless turned off) and returns the queue.
    ///
    /// Fails at once, with [`Error::Config`] for a bad URL or prefix, and
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub fn open(self) -> Result<DatabaseQueue, Error> {
        validate_prefix(&self.prefix)?;
        let target = parse_url(&self.url)?;
        let dialect = match target {
            Target::SqliteFile(_) | Target::SqliteMemory => Dialect::Sqlite,
            Target::Postgres(_) => Dialect::Postgres,
            Target::Mysql(_) => Dialect::Mysql,
        };
        let schema = Schema {
            dialect,
            prefix: self.prefix.clone(),
        };
        let pool = self.pool(&target)?;
        let queue = DatabaseQueue {
            inner: Arc::new(Inner {
                pool,
                st: Statements::new(dialect, &self.prefix),
                schema,
                shown_url: hide_password(&self.url),
                temporary: self.temporary,
                retention: self.retention,
                #[cfg(feature = "postgres")]
                listen: match &target {
                    Target::Postgres(url) => Some(Listen {
                        url: url.clone(),
                        channel: crate::sql::ready_channel(&self.prefix),
                        idle: Mutex::new(Vec::new()),
                    }),
                    _ => None,
                },
                #[cfg(feature = "postgres")]
                ends: match &target {
                    Target::Postgres(url) => Some(Arc::new(Ends::new(
                        url.clone(),
                        crate::sql::finished_channel(&self.prefix),
                    ))),
                    _ => None,
                },
                #[cfg(any(feature = "sqlite", feature = "mysql"))]
                wake: match &target {
                    #[cfg(feature = "sqlite")]
                    Target::SqliteFile(path) => Some(Wake::sqlite_file(path)),
                    #[cfg(feature = "sqlite")]
                    Target::SqliteMemory => Some(Wake::memory()),
                    #[cfg(feature = "mysql")]
                    Target::Mysql(url) => Some(Wake::mysql(url, &self.prefix)),
                    #[allow(unreachable_patterns)]
                    _ => None,
                },
            }),
        };
        if self.migrate {
            queue.migrate()?;
        }
        Ok(queue)
    }

    fn pool(&self, target: &Target) -> Result<Pools, Error> {
        let timeout = self.connect_timeout;
        fn builder<C: diesel::r2d2::R2D2Connection + 'static>(
            max: u32,
            timeout: Duration,
        ) -> diesel::r2d2::Builder<ConnectionManager<C>> {
            Pool::builder()
                .max_size(max)
                .min_idle(Some(0))
                .thread_pool(maintenance_thread())
                // a checkout costs no round trip; a broken connection is
                // dropped when it is returned, and the next call reconnects
                .test_on_check_out(false)
                .connection_timeout(timeout)
        }
        match target {
            #[cfg(feature = "sqlite")]
            Target::SqliteFile(path) => {
                let mut first =
                    SqliteConnection::establish(path).map_err(|e| conn_error(&self.url, &e))?;
                sqlite_setup(&mut first).map_err(db_error)?;
                // WAL is a property of the file: set once, kept by every connection
                sqlite_wal(&mut first).map_err(db_error)?;
                let pool = builder(self.max_connections, timeout)
                    .connection_customizer(Box::new(Setup))
                    .build_unchecked(ConnectionManager::new(path.as_str()));
                Ok(Pools::Sqlite(pool))
            }
            #[cfg(feature = "sqlite")]
            Target::SqliteMemory => {
                // One connection, kept for the queue's life: it is the database.
                let pool = builder(1, timeout)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connection_customizer(Box::new(Setup))
                    .build(ConnectionManager::new(":memory:"))
                    .map_err(Error::unavailable)?;
                Ok(Pools::Sqlite(pool))
            }
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                PgConnection::establish(url).map_err(|e| conn_error(&self.url, &e))?;
                let pool = builder(self.max_connections, timeout)
                    .connection_customizer(Box::new(Setup))
                    .build_unchecked(ConnectionManager::new(url.as_str()));
                Ok(Pools::Postgres(pool))
            }
            #[cfg(feature = "mysql")]
            Target::Mysql(url) => {
                MysqlConnection::establish(url).map_err(|e| conn_error(&self.url, &e))?;
                let pool = builder(self.max_connections, timeout)
                    // diesel marks a MySQL connection broken only when a
                    // transaction breaks; one whose server restarted fails
                    // every later statement with "gone away" and would be
                    // handed out forever. A ping on checkout replaces it.
                    .test_on_check_out(true)
                    .connection_customizer(Box::new(Setup))
                    .build_unchecked(ConnectionManager::new(url.as_str()));
                Ok(Pools::Mysql(pool))
            }
            #[allow(unreachable_patterns)]
            Target::SqliteFile(_) | Target::SqliteMemory => {
                Err(feature_missing("sqlite", &self.url))
            }
            #[allow(unreachable_patterns)]
            Target::Postgres(_) => Err(feature_missing("postgres", &self.url)),
            #[allow(unreachable_patterns)]
            Target::Mysql(_) => Err(feature_missing("mysql", &self.url)),
        }
    }
}

impl DatabaseQueue {
    /// [`stats`](BaseQueue::stats), exact when `bound` is `None`, or
    /// [`estimate_stats`](BaseQueue::estimate_stats) up to `bound`.
    fn read_stats(&self, queue: &str, bound: Option<u64>) -> Result<QueueStats, Error> {
        let st = &self.inner.st;
        let limit = bound.map(|b| i64::try_from(b).unwrap_or(i64::MAX - 1));
        with_conn!(self.inner, conn => {
            conn.transaction(|conn| {
                let mut stats = QueueStats::default();
                let counts = match limit {
                    Some(limit) if !st.estimates.is_empty() => {
                        let mut query = st.counts_up_to.query();
                        for _ in 0..5 {
                            query = query.text(queue).i64(limit + 1);
                        }
                        query.text(queue).load::<StateCount>(conn)?
                    }
                    _ => st.counts.query()
                        .text(queue)
                        .text(queue)
                        .text(queue)
                        .text(queue)
                        .load::<StateCount>(conn)?,
                };
                for StateCount { s, n } in counts {
                    let n = n.unsigned_abs();
                    match state_of(s) {
                        Some(JobState::Pending) => stats.pending += n,
                        Some(JobState::Running) => stats.running += n,
                        Some(JobState::Done) => stats.done += n,
                        Some(JobState::Cancelled) => stats.cancelled += n,
                        // a code outband does not know: `dead` is where the
                        // next recovery step puts the row
                        _ => stats.dead += n,
                    }
                }
                if let Some(limit) = limit {
                    let over = limit.unsigned_abs();
                    for (state, explain) in &st.estimates {
                        let count = match state {
                            JobState::Pending => &mut stats.pending,
                            JobState::Running => &mut stats.running,
                            JobState::Done => &mut stats.done,
                            JobState::Dead => &mut stats.dead,
                            JobState::Cancelled => &mut stats.cancelled,
                            _ => continue,
                        };
                        if *count <= over {
                            continue;
                        }
                        let planned = if st.dialect == Dialect::Postgres {
                            explain.query().text(queue).load::<PlanLine>(conn)?
                                .iter()
                                .find_map(|plan| planned_rows(&plan.line))
                        } else {
                            // MariaDB gives `rows` as text; a server whose
                            // `rows` does not read as text gets the bound
                            explain.query().text(queue).load::<PlanRows>(conn)
                                .ok()
                                .and_then(|plans| {
                                    plans.iter().find_map(|plan| plan.rows.as_deref()?.trim().parse().ok())
                                })
                        };
                        *count = planned.unwrap_or(0).max(over + 1);
                        stats.estimated.push(*state);
                    }
                }
                let us = |v: i64| Duration::from_micros(v.unsigned_abs());
                let times = match limit {
                    Some(limit) => st.recent_run_times.query()
                        .i64(micros(THROUGHPUT_WINDOW))
                        .text(queue)
                        .i64(limit),
                    None => st.run_times.query()
                        .i64(micros(THROUGHPUT_WINDOW))
                        .text(queue),
                }
                .get_result::<RunTimes>(conn)?;
                let recent = times.recent.unsigned_abs();
                stats.throughput = match (limit, times.span) {
                    // every one of the last `bound` jobs ended within the
                    // window: the rate at which they ended
                    (Some(limit), Some(span)) if times.recent == limit && span > 0 => {
                        recent as f64 / us(span).as_secs_f64()
                    }
                    _ => throughput(recent),
                };
                let (count, mean) = (times.n, times.mean);
                stats.paused = st.is_paused.query()
                    .text(queue)
                    .get_result::<Number>(conn)?
                    .n > 0;
                stats.mean_run_time = mean.map(us);
                let count = usize::try_from(count).unwrap_or(0);
                for (pct, slot) in [(50, &mut stats.p50_run_time), (99, &mut stats.p99_run_time)] {
                    // the rank `fill_run_times` takes in process
                    let Some(rank) = nearest_rank(count, pct) else {
                        break;
                    };
                    let rank = i64::try_from(rank).unwrap_or(i64::MAX);
                    let at = match limit {
                        Some(limit) => st.recent_run_time_at.query()
                            .text(queue)
                            .i64(limit)
                            .i64(rank),
                        None => st.run_time_at.query().text(queue).i64(rank),
                    }
                    .get_result::<Number>(conn)?;
                    *slot = Some(us(at.n));
                }
                Ok(stats)
            })
            .map_err(db_error)
        })
    }

    /// Opens the queue at `url` with the default settings, creating its
    /// tables if they do not exist. See [`Builder`] for the settings.
    ///
    /// Two settings may ride in the URL's query, for the daemon and
    /// `OUTBAND_URL`, which only take a URL: `prefix=<table prefix>` and
    /// `retention=<seconds>` (e.g. `postgres://host/app?prefix=billing_`).
    /// They are taken out before the rest reaches the database driver.
    pub fn open(url: &str) -> Result<Self, Error> {
        let (url, settings) = split_url(url)?;
        let mut builder = Self::builder(url);
        if let Some(prefix) = settings.prefix {
            builder = builder.prefix(prefix);
        }
        if let Some(retention) = settings.retention {
            builder = builder.retention(retention);
        }
        builder.open()
    }

    /// The settings for opening the queue at `url`.
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            migrate: true,
            temporary: false,
            retention: DEFAULT_RETENTION,
        }
    }

    /// How long finished jobs are kept ([`Builder::retention`]).
    pub fn retention(&self) -> Duration {
        self.inner.retention
    }

    /// Deletes the `done` and `cancelled` jobs that finished longer ago than
    /// the retention period, and returns how many: [`purge`](BaseQueue::purge)
    /// with [`retention`](Self::retention). The consumer's manager calls it
    /// periodically; `dead` jobs stay for an operator.
    pub fn purge_finished(&self) -> Result<u64, Error> {
        self.purge(self.inner.retention)
    }

    /// The table prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.schema.prefix
    }

    /// Runs the embedded migrations that have not run yet. [`Builder::open`]
    /// calls it unless told not to; it is safe to call from several processes
    /// at once.
    pub fn migrate(&self) -> Result<(), Error> {
        let schema = self.inner.schema.clone();
        let run = |result: diesel::migration::Result<
            Vec<diesel::migration::MigrationVersion<'_>>,
        >| { result.map(drop).map_err(Error::Backend) };
        #[cfg(feature = "sqlite")]
        #[allow(irrefutable_let_patterns)] // when SQLite is the only database built
        if let Pools::Sqlite(pool) = &self.inner.pool {
            // Two processes opening a fresh file (a web server and its
            // consumer) would both find the migrations pending, and the
            // second would fail on the first's tables. `BEGIN IMMEDIATE`
            // takes the write lock first, waiting out the busy timeout, so
            // the second finds them applied; each migration's own
            // transaction becomes a savepoint inside this one.
            let mut conn = pool.get().map_err(Error::unavailable)?;
            return conn
                .immediate_transaction::<_, Box<dyn std::error::Error + Send + Sync>, _>(|conn| {
                    conn.run_pending_migrations(schema).map(drop)
                })
                .map_err(Error::Backend);
        }
        with_conn!(self.inner, conn => {
            self.with_migration_lock(conn, |conn| run(conn.run_pending_migrations(schema)))
        })
    }

    /// Runs `f` holding a lock that serializes migrations across processes.
    fn with_migration_lock<C: Store, T>(
        &self,
        conn: &mut C,
        f: impl FnOnce(&mut C) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (lock, unlock) = match self.inner.st.dialect {
            Dialect::Postgres => (
                "SELECT pg_advisory_lock(7316190412) AS n",
                "SELECT pg_advisory_unlock(7316190412) AS n",
            ),
            Dialect::Mysql => (
                "SELECT GET_LOCK('outband_migrate', 60) AS n",
                "SELECT RELEASE_LOCK('outband_migrate') AS n",
            ),
            // SQLite: `migrate` holds the write lock instead
            Dialect::Sqlite => return f(conn),
        };
        conn.batch_execute(lock).map_err(db_error)?;
        let result = f(conn);
        conn.batch_execute(unlock).map_err(db_error)?;
        result
    }

    /// Enqueues `jobs` through `conn`, your own connection, as part of your
    /// transaction: if you roll it back, nothing was enqueued. Returns the ids
    /// in order. `conn` must reach the same database as this queue.
    ///
    /// On PostgreSQL and MySQL, a job with an ordering key locks that key
    /// until your transaction ends (PostgreSQL: an advisory lock; MySQL: a
    /// row of `<prefix>keys`): another enqueue with the same key waits for
    /// it, so that the jobs of one key run one at a time, in the order they
    /// were committed. SQLite has one writer at a time and needs no lock.
    ///
    /// A job with a [unique key](NewJob::unique) is refused with
    /// [`Error::InvalidJob`] and nothing is stored: whether its key is held
    /// is decided by [`enqueue_unique`](BaseQueue::enqueue_unique) in a
    /// transaction of its own, which reads the holder as committed, where
    /// yours may read an older snapshot and would hold the key's lock until
    /// it ends.
    ///
    /// A command's [`job`](outband::queue_command) companion builds its job
    /// with the command's options:
    ///
    /// ```
    /// use diesel::Connection;
    /// use outband::{BaseQueue, queue_command};
    /// use outband_diesel::DatabaseQueue;
    ///
    /// /// Sends the welcome mail.
    /// #[queue_command(queue = "mail")]
    /// fn welcome(user_id: u64) {
    ///     let _ = user_id;
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("outband-doc-tx-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("app.db");
    /// let backend = DatabaseQueue::open(&format!("sqlite://{}", path.display()))?;
    /// let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap())?;
    /// let job = welcome::job(7)?;
    /// let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
    ///     // … your own writes …
    ///     backend.enqueue_in(conn, &[job]).expect("enqueued");
    ///     Err(diesel::result::Error::RollbackTransaction)
    /// });
    /// assert_eq!(backend.len("mail")?, 0);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    pub fn enqueue_in<C: JobConnection>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
    ) -> Result<Vec<JobId>, Error> {
        if let Some(job) = jobs.iter().find(|job| job.unique.is_some()) {
            return Err(Error::InvalidJob(format!(
                "job of {} has a unique key: enqueue_in does not take unique jobs; \
                 enqueue them with enqueue_unique, in a transaction of its own",
                job.command
            )));
        }
        fate::validate_batch(jobs)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = conn
            .enqueue(&self.inner.st, jobs, false)
            .map_err(db_error)?;
        Ok(ids.into_iter().map(|id| JobId(id.unsigned_abs())).collect())
    }

    fn count(&self, sql: &Stmt, queue: &str) -> Result<u64, Error> {
        with_conn!(self.inner, conn => {
            let n = sql.query()
                .text(queue)
                .get_result::<Number>(conn)
                .map_err(db_error)?
                .n;
            Ok(n.unsigned_abs())
        })
    }

    /// Runs a statement on one job id and tells whether it changed a row.
    fn on_job(&self, sql: &Stmt, id: JobId) -> Result<bool, Error> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(false);
        };
        with_conn!(self.inner, conn => {
            let n = sql.query()
                .i64(id)
                .execute(conn)
                .map_err(db_error)?;
            Ok(n > 0)
        })
    }
}

impl DatabaseQueue {
    /// How long until the first turn of a ready rate-limited job of
    /// `queues` that may not start yet, on the database's clock; `None`
    /// when there is no such job.
    fn next_turn(&self, queues: &[String]) -> Result<Option<Duration>, Error> {
        let st = &self.inner.st;
        let mut first: Option<Duration> = None;
        for queue in queues {
            let turn = with_conn!(self.inner, conn => {
                conn.next_turn(st, queue).map_err(db_error)?
            });
            first = match (first, turn) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }

    /// PostgreSQL: marks job `id` awaited and tells whether it has yet to
    /// end: `false` when it has ended, or is not in `<prefix>jobs` (done,
    /// or unknown). A state code outband does not know has ended too: the
    /// job reads as dead.
    #[cfg(feature = "postgres")]
    fn await_end(&self, id: i64) -> Result<bool, Error> {
        let codes = with_conn!(self.inner, conn => {
            self.inner.st.await_end.query()
                .i64(id)
                .i64(id)
                .load::<StateCode>(conn)
                .map_err(db_error)?
        });
        Ok(codes.iter().any(|code| {
            matches!(
                state_of(code.s),
                Some(JobState::Pending | JobState::Running)
            )
        }))
    }

    /// Wakes the waiters of this process on the database, once jobs may
    /// have become ready and their transaction has committed.
    fn jobs_ready(&self) {
        #[cfg(any(feature = "sqlite", feature = "mysql"))]
        if let Some(wake) = &self.inner.wake {
            wake.notify();
        }
    }

    /// [`jobs_ready`](Self::jobs_ready) if an outcome of `completions` made
    /// its job ready at once: released, or retried without a delay.
    fn ready_again(&self, completions: &[(Lease, Outcome)]) {
        let again = |outcome: &Outcome| match outcome {
            Outcome::Release => true,
            Outcome::Retry { delay, .. } => delay.is_zero(),
            _ => false,
        };
        if completions.iter().any(|(_, outcome)| again(outcome)) {
            self.jobs_ready();
        }
    }
}

fn id_of(id: JobId) -> i64 {
    i64::try_from(id.0).unwrap_or(-1)
}

impl BaseQueue for DatabaseQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        fate::validate_batch(&jobs)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = with_conn!(self.inner, conn => {
            conn.enqueue(&self.inner.st, &jobs, true).map_err(db_error)?
        });
        self.jobs_ready();
        Ok(ids.into_iter().map(|id| JobId(id.unsigned_abs())).collect())
    }

    /// One write transaction, run again on a conflict. It locks the key's
    /// row of `<prefix>unique_keys`, inserting it when missing (PostgreSQL
    /// and SQLite: `INSERT … ON CONFLICT DO UPDATE … RETURNING`; MySQL:
    /// `INSERT … ON DUPLICATE KEY UPDATE`, then `SELECT … FOR UPDATE`), so
    /// that enqueues of one key wait for each other. It reads the state and
    /// finish time of the job the row names, from `<prefix>jobs` or
    /// `<prefix>done`, with the database's clock, and returns that job if
    /// [`UniqueUntil::holds`](outband::UniqueUntil::holds) says it holds the
    /// key; a job that is gone holds nothing. Otherwise the job is inserted
    /// as [`enqueue`](BaseQueue::enqueue) inserts it (durably, and waking
    /// consumers as it does), and the row names it.
    fn enqueue_unique(&self, job: NewJob) -> Result<Enqueued, Error> {
        let Some(unique) = fate::validate_unique(&job)? else {
            let id = self.enqueue(job)?;
            return Ok(Enqueued::new(id));
        };
        let st = &self.inner.st;
        let key = unique.key.as_str();
        let (id, stored) = with_conn!(self.inner, conn => {
            retry_conflicts(|| conn.write(|conn| {
                let holder = match st.dialect {
                    Dialect::Mysql => {
                        st.unique_lock.query().text(key).execute(conn)?;
                        st.unique_read.query().text(key).get_result::<Number>(conn)?.n
                    }
                    Dialect::Postgres | Dialect::Sqlite => {
                        st.unique_lock.query().text(key).get_result::<Number>(conn)?.n
                    }
                };
                // 0: the row was just created
                if holder != 0 {
                    let row = st.unique_holder.query()
                        .i64(holder)
                        .i64(holder)
                        .get_result::<Holder>(conn)
                        .optional()?;
                    if let Some(row) = row {
                        // a code outband does not know reads as `dead`
                        let state = state_of(row.s).unwrap_or(JobState::Dead);
                        let finished_at = row.finished_at.map(time_of);
                        if unique.until.holds(state, finished_at, time_of(row.db_now)) {
                            return Ok((holder, false));
                        }
                    }
                }
                let ids = conn.insert_rows(st, std::slice::from_ref(&job), true)?;
                let Some(&id) = ids.first() else {
                    return Err(DieselError::NotFound);
                };
                st.unique_take.query().i64(id).text(key).execute(conn)?;
                Ok((id, true))
            }))
            .map_err(db_error)?
        });
        let id = JobId(id.unsigned_abs());
        if !stored {
            return Ok(Enqueued::duplicate_of(id));
        }
        self.jobs_ready();
        Ok(Enqueued::new(id))
    }

    fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        with_conn!(self.inner, conn => {
            conn.claim(&self.inner.st, queue, max, micros(lease)).map_err(db_error)
        })
    }

    fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), Error> {
        // nothing wakes a waiter when a rate-limited job's turn comes: the
        // wait ends by then
        let timeout = match self.next_turn(queues)? {
            Some(turn) => timeout.min(turn),
            None => timeout,
        };
        #[cfg(feature = "postgres")]
        if let Some(listen) = &self.inner.listen {
            return listen.wait(self, queues, timeout);
        }
        #[cfg(any(feature = "sqlite", feature = "mysql"))]
        if let Some(wake) = &self.inner.wake {
            return wake.wait(timeout, || {
                for queue in queues {
                    if self.has_jobs_waiting(queue)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            });
        }
        let _ = queues;
        std::thread::sleep(timeout);
        Ok(())
    }

    /// PostgreSQL: marks the job awaited, on a listening connection's
    /// watch, and waits for its end to be notified. SQLite
    /// and MySQL sleep the whole `timeout`, and a handle polls.
    fn wait_finished(&self, id: JobId, timeout: Duration) -> Result<(), Error> {
        #[cfg(feature = "postgres")]
        if let Some(ends) = &self.inner.ends {
            let Ok(id) = i64::try_from(id.0) else {
                // no row has such an id
                return Ok(());
            };
            return ends.wait(id, timeout, || self.await_end(id));
        }
        let _ = id;
        std::thread::sleep(timeout);
        Ok(())
    }

    /// The claim's own test of readiness, the pause included.
    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error> {
        with_conn!(self.inner, conn => {
            conn.has_ready(&self.inner.st, queue).map_err(db_error)
        })
    }

    fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, Error> {
        let st = &self.inner.st;
        let (id, token) = (id_of(lease.job), i64::try_from(lease.token).unwrap_or(-1));
        with_conn!(self.inner, conn => {
            conn.write(|conn| {
                let n = st.heartbeat.query()
                    .i64(micros(lease_for))
                    .i64(id)
                    .i64(token)
                    .execute(conn)?;
                if n == 0 {
                    return Ok(Heartbeat::LeaseLost);
                }
                let lease = st.select_lease.query()
                    .i64(id)
                    .get_result::<LeaseRow>(conn)?;
                let deadline = time_of(lease.n.unwrap_or_default());
                Ok(if lease.cancel_reason.is_some() {
                    Heartbeat::CancelRequested(deadline)
                } else {
                    Heartbeat::Extended(deadline)
                })
            })
            .map_err(db_error)
        })
    }

    /// One update of the job's row, fenced by the lease's token as
    /// [`heartbeat`](BaseQueue::heartbeat) is; atomic on its own, so no
    /// `BEGIN` or `COMMIT` round trips.
    fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, Error> {
        let (id, token) = (id_of(lease.job), i64::try_from(lease.token).unwrap_or(-1));
        with_conn!(self.inner, conn => {
            let n = self.inner.st.progress.query()
                .f64(f64::from(progress.fraction))
                .text(&progress.note)
                .i64(id)
                .i64(token)
                .execute(conn)
                .map_err(db_error)?;
            Ok(completion(n))
        })
    }

    fn complete(&self, lease: &Lease, outcome: Outcome) -> Result<Completion, Error> {
        let mut done = self.complete_many(vec![(lease.clone(), outcome)])?;
        done.pop()
            .ok_or_else(|| Error::backend("complete_many returned no completion"))
    }

    fn complete_many(&self, completions: Vec<(Lease, Outcome)>) -> Result<Vec<Completion>, Error> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let completed = with_conn!(self.inner, conn => {
            conn.complete_many(&self.inner.st, &completions).map_err(db_error)?
        });
        self.ready_again(&completions);
        Ok(completed)
    }

    /// One transaction: one commit for the outcomes and the claim.
    fn complete_and_claim(
        &self,
        completions: Vec<(Lease, Outcome)>,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<(Vec<Completion>, Vec<Claimed>), Error> {
        if completions.is_empty() || max == 0 {
            let completed = self.complete_many(completions)?;
            return Ok((completed, self.claim(queue, max, lease)?));
        }
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let done = with_conn!(self.inner, conn => {
            conn.complete_and_claim(&self.inner.st, &completions, queue, max, micros(lease))
                .map_err(db_error)?
        });
        self.ready_again(&completions);
        Ok(done)
    }

    fn recover_expired(&self) -> Result<Recovered, Error> {
        let st = &self.inner.st;
        let (dead, requeued, unknown) = with_conn!(self.inner, conn => {
            // MySQL: the range updates may deadlock with a claim or an
            // outcome; the step is rolled back and run again
            retry_conflicts(|| conn.write(|conn| {
                // neither requeued nor dead: a cancel was asked for
                st.recover_cancelled.query().execute(conn)?;
                let dead = st.recover_dead.query().execute(conn)?;
                let requeued = st.recover_requeue.query().execute(conn)?;
                // never claimed, so no claim ever meets them: here is where
                // rows of a state code outband does not know end; found by a
                // read that locks nothing, then moved one by one
                let mut unknown = 0;
                for row in st.unknown_states.query().load::<Number>(conn)? {
                    unknown += st.recover_unknown.query().i64(row.n).execute(conn)?;
                }
                Ok((dead, requeued, unknown))
            }))
            .map_err(db_error)?
        });
        if unknown > 0 {
            log::error!("{unknown} jobs had a state code outband does not know; moved to dead");
        }
        if requeued > 0 {
            self.jobs_ready();
        }
        Ok(Recovered::new(requeued as u64, (dead + unknown) as u64))
    }

    fn len(&self, queue: &str) -> Result<u64, Error> {
        self.count(&self.inner.st.len, queue)
    }

    /// One transaction: the queue's pending jobs are locked, then deleted
    /// with the rows of `<prefix>unique_keys` that name them, so that no
    /// claim takes one of them in between and keeps a job whose key was
    /// deleted.
    fn flush(&self, queue: &str) -> Result<u64, Error> {
        let st = &self.inner.st;
        with_conn!(self.inner, conn => {
            let n = retry_conflicts(|| conn.write(|conn| {
                let ids: Vec<i64> = st.flush_ids.query()
                    .text(queue)
                    .load::<Number>(conn)?
                    .into_iter()
                    .map(|row| row.n)
                    .collect();
                let mut n = 0;
                for chunk in ids.chunks(INSERT_CHUNK) {
                    for (head, jobs) in [(&st.unique_delete_head, false), (&st.flush_head, true)] {
                        let statement = Stmt::new(&format!("{head}{}", placeholders(chunk.len())));
                        let mut query = statement.query();
                        if chunk.len() > 16 {
                            // one prepared statement per size: keep few
                            query = query.uncached();
                        }
                        for &id in chunk {
                            query = query.i64(id);
                        }
                        let deleted = query.execute(conn)?;
                        if jobs {
                            n += deleted;
                        }
                    }
                }
                Ok(n)
            }))
            .map_err(db_error)?;
            Ok(n as u64)
        })
    }

    fn stats(&self, queue: &str) -> Result<QueueStats, Error> {
        self.read_stats(queue, None)
    }

    /// On PostgreSQL and MySQL, each state's jobs are counted up to
    /// `exact_up_to` + 1 through the index the exact count reads; a state
    /// with more gets the planner's estimate of its count from `EXPLAIN`,
    /// raised to `exact_up_to` + 1 when it is lower (the statistics behind
    /// it lag the table), as Oban's dashboard does. MySQL's estimate comes
    /// from dives into the index, which InnoDB caps at half the table's
    /// rows: a queue that holds most of the table shows about half its
    /// count there. SQLite counts exactly: its count of a state is a walk of
    /// one stretch of an index, without a look at the rows. On every database the throughput and run times
    /// are those of the queue's last `exact_up_to` done jobs, found through
    /// `done_queue`.
    fn estimate_stats(&self, queue: &str, exact_up_to: u64) -> Result<QueueStats, Error> {
        self.read_stats(queue, Some(exact_up_to.max(1)))
    }

    fn queues(&self) -> Result<Vec<String>, Error> {
        with_conn!(self.inner, conn => {
            let names = self.inner.st.queues.query()
                .load::<Name>(conn)
                .map_err(db_error)?;
            Ok(names.into_iter().map(|n| n.name).collect())
        })
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(None);
        };
        let row = with_conn!(self.inner, conn => {
            self.inner.st.job.query()
                .i64(id)
                .i64(id)
                .get_result::<Row>(conn)
                .optional()
                .map_err(db_error)?
        });
        Ok(row.map(|row| row.to_job_lenient()))
    }

    /// Two statements, each walking down the primary key of the table the
    /// state lives in (`<prefix>done` for `done`, `<prefix>jobs` for the
    /// others): the first finds the page's floor, the id
    /// [`JobQuery::SCAN`] rows below its start, the second reads the jobs
    /// between the two that the query lists. A page is an id range, so a
    /// job that moves between the statements changes no other job's page.
    fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let st = &self.inner.st;
        let Some(code) = code_of(query.state) else {
            // no row holds a state this crate does not know
            return Ok(JobPage::default());
        };
        let (floor, page) = if query.state == JobState::Done {
            (&st.list_done_floor, &st.list_done)
        } else {
            (&st.list_floor, &st.list)
        };
        let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let start = query
            .before
            .map_or(i64::MAX, |id| i64::try_from(id.0).unwrap_or(i64::MAX));
        let size = query.page_size();
        let command = query.command.as_deref();
        let (floor, rows) = with_conn!(self.inner, conn => {
            let floor = floor.query()
                .i64(start)
                .i64(clamp(JobQuery::SCAN - 1))
                .get_result::<Number>(conn)
                .optional()
                .map_err(db_error)?
                .map(|row| row.n);
            // one more than the page holds: whether more follow it
            let rows = page.query()
                .i64(start)
                .i64(floor.unwrap_or(i64::MIN))
                .text(&query.queue)
                .i32(code)
                .i32(code)
                .opt_text(command)
                .opt_text(command)
                .i64(clamp(size + 1))
                .load::<Row>(conn)
                .map_err(db_error)?;
            (floor, rows)
        });
        let mut jobs: Vec<Job> = rows.iter().map(Row::to_job_lenient).collect();
        let next = if jobs.len() > size {
            jobs.truncate(size);
            jobs.last().map(|job| job.id)
        } else {
            // the rows between the start and the floor are all examined;
            // with no floor, none are left below them
            floor.map(|id| JobId(id.unsigned_abs()))
        };
        Ok(JobPage::new(jobs, next))
    }

    fn dead_jobs(&self, queue: &str, offset: usize, limit: usize) -> Result<Vec<Job>, Error> {
        let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = with_conn!(self.inner, conn => {
            self.inner.st.dead_jobs.query()
                .text(queue)
                .i64(clamp(limit))
                .i64(clamp(offset))
                .load::<Row>(conn)
                .map_err(db_error)?
        });
        Ok(rows.iter().map(Row::to_job_lenient).collect())
    }

    fn retry_dead(&self, id: JobId) -> Result<bool, Error> {
        let retried = self.on_job(&self.inner.st.retry_dead, id)?;
        if retried {
            self.jobs_ready();
        }
        Ok(retried)
    }

    /// The job's row and the row of `<prefix>unique_keys` naming it, if
    /// there is one, in one transaction.
    fn delete_dead(&self, id: JobId) -> Result<bool, Error> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(false);
        };
        let st = &self.inner.st;
        with_conn!(self.inner, conn => {
            retry_conflicts(|| conn.write(|conn| {
                let deleted = st.delete_dead.query().i64(id).execute(conn)? > 0;
                if deleted {
                    st.unique_delete.query().i64(id).execute(conn)?;
                }
                Ok(deleted)
            }))
            .map_err(db_error)
        })
    }

    /// One transaction that locks the job's row, reads its state and acts
    /// on it: a pending job's row turns `cancelled` where it is, a running
    /// one's gets the request's reason, which its heartbeats, its attempt's
    /// end and the recovery of its lease read.
    fn cancel(&self, id: JobId, reason: &str) -> Result<Cancellation, Error> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(Cancellation::NotFound);
        };
        let st = &self.inner.st;
        let cancellation = with_conn!(self.inner, conn => {
            retry_conflicts(|| conn.write(|conn| {
                let code = st.cancel_lock.query()
                    .i64(id)
                    .get_result::<StateCode>(conn)
                    .optional()?;
                let Some(StateCode { s: code }) = code else {
                    let done = st.cancel_done.query().i64(id).get_result::<Number>(conn)?.n;
                    return Ok(if done > 0 {
                        Cancellation::Finished(JobState::Done)
                    } else {
                        Cancellation::NotFound
                    });
                };
                Ok(match state_of(code) {
                    Some(JobState::Pending) => {
                        st.cancel_pending.query().text(reason).i64(id).execute(conn)?;
                        Cancellation::Cancelled
                    }
                    Some(JobState::Running) => {
                        st.cancel_running.query().text(reason).i64(id).execute(conn)?;
                        if st.dialect == Dialect::Postgres {
                            // the processors' cancel feeds hear it with the commit
                            st.cancel_pushed.query().text(&id.to_string()).execute(conn)?;
                        }
                        Cancellation::Requested
                    }
                    Some(state) => Cancellation::Finished(state),
                    // a code outband does not know reads as `dead`, where
                    // the next recovery step puts the row
                    None => Cancellation::Finished(JobState::Dead),
                })
            }))
            .map_err(db_error)?
        });
        if cancellation == Cancellation::Cancelled {
            // the next job of its ordering key may be ready now
            self.jobs_ready();
        }
        Ok(cancellation)
    }

    /// PostgreSQL: a connection of the feed's own that listens for the
    /// requests [`cancel`](BaseQueue::cancel) notifies. SQLite and MySQL:
    /// none; heartbeats carry the requests.
    fn cancel_feed(&self) -> Result<Option<Box<dyn CancelFeed>>, Error> {
        #[cfg(feature = "postgres")]
        if let Some(listen) = &self.inner.listen {
            let channel = crate::sql::cancels_channel(self.prefix());
            return Ok(Some(Box::new(PgCancelFeed::open(&listen.url, &channel)?)));
        }
        Ok(None)
    }

    /// A row in `<prefix>paused`, which every claim statement looks up.
    /// Only a duplicate key tells MySQL's insert that the queue was paused
    /// already.
    fn pause(&self, queue: &str) -> Result<bool, Error> {
        with_conn!(self.inner, conn => {
            match self.inner.st.pause.query().text(queue).execute(conn) {
                Ok(n) => Ok(n > 0),
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
                Err(error) => Err(db_error(error)),
            }
        })
    }

    /// Deletes the queue's row from `<prefix>paused`. PostgreSQL's trigger
    /// on that table notifies idle consumers with the commit; SQLite and
    /// MySQL wake this process's waiters here, and other processes' find
    /// the queue's jobs by their watch or poll.
    fn resume(&self, queue: &str) -> Result<bool, Error> {
        let resumed = with_conn!(self.inner, conn => {
            self.inner.st.resume.query()
                .text(queue)
                .execute(conn)
                .map_err(db_error)?
                > 0
        });
        if resumed {
            self.jobs_ready();
        }
        Ok(resumed)
    }

    fn paused(&self) -> Result<Vec<String>, Error> {
        let rows = with_conn!(self.inner, conn => {
            self.inner.st.paused.query()
                .load::<Name>(conn)
                .map_err(db_error)?
        });
        let mut names: Vec<String> = rows.into_iter().map(|row| row.name).collect();
        // sorted as Rust sorts strings, by their bytes: an `ORDER BY` would
        // follow the database's collation
        names.sort_unstable();
        Ok(names)
    }

    /// Done jobs are deleted from `<prefix>done`, cancelled ones from
    /// `<prefix>jobs`, by their finish time, each after the rows of
    /// `<prefix>unique_keys` that name them, in one transaction. The time
    /// is read from the database's clock once, so that the keys and the
    /// jobs deleted are those of the same jobs, which nothing changes once
    /// they are done or cancelled.
    fn purge(&self, older_than: Duration) -> Result<u64, Error> {
        let st = &self.inner.st;
        with_conn!(self.inner, conn => {
            let n = retry_conflicts(|| conn.write(|conn| {
                let now = st.now.query().get_result::<Number>(conn)?.n;
                let before = now.saturating_sub(micros(older_than));
                let mut n = 0;
                for (keys, jobs) in [
                    (&st.purge_unique, &st.purge),
                    (&st.purge_cancelled_unique, &st.purge_cancelled),
                ] {
                    keys.query().i64(before).execute(conn)?;
                    n += jobs.query().i64(before).execute(conn)?;
                }
                st.purge_rates.query().execute(conn)?;
                Ok(n)
            }))
            .map_err(db_error)?;
            Ok(n as u64)
        })
    }

    fn claim_tick(&self, name: &str, tick: SystemTime) -> Result<bool, Error> {
        with_conn!(self.inner, conn => {
            let n = self.inner.st.claim_tick.query()
                .text(name)
                .i64(epoch_micros(tick))
                .execute(conn)
                .map_err(db_error)?;
            Ok(n > 0)
        })
    }

    fn last_tick(&self, name: &str) -> Result<Option<SystemTime>, Error> {
        with_conn!(self.inner, conn => {
            let last = self.inner.st.last_tick.query()
                .text(name)
                .get_result::<MaybeNumber>(conn)
                .map_err(db_error)?;
            Ok(last.n.map(time_of))
        })
    }

    /// Upserts the consumer's row of `<prefix>consumers`, after deleting
    /// the rows of consumers gone for
    /// [`CONSUMER_FORGET_AFTER`](outband::CONSUMER_FORGET_AFTER).
    fn register_consumer(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> {
        let json = info.to_json()?;
        let st = &self.inner.st;
        with_conn!(self.inner, conn => {
            st.consumers_forget.query()
                .i64(micros(CONSUMER_FORGET_AFTER))
                .execute(conn)
                .map_err(db_error)?;
            st.consumer_register.query()
                .text(&info.id)
                .text(&json)
                .i64(micros(ttl).max(1))
                .execute(conn)
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn unregister_consumer(&self, id: &str) -> Result<(), Error> {
        with_conn!(self.inner, conn => {
            self.inner.st.consumer_unregister.query()
                .text(id)
                .execute(conn)
                .map_err(db_error)?;
            Ok(())
        })
    }

    /// Every row of `<prefix>consumers`; a row whose info does not read as
    /// JSON is logged and left out.
    fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        let rows = with_conn!(self.inner, conn => {
            self.inner.st.consumers.query()
                .load::<ConsumerRow>(conn)
                .map_err(db_error)?
        });
        let mut consumers: Vec<Consumer> = rows
            .into_iter()
            // gone long enough to be forgotten: the next registration
            // deletes the row
            .filter(|row| !Consumer::forgotten(time_of(row.expires_at), time_of(row.db_now)))
            .filter_map(|row| match ConsumerInfo::from_json(&row.info) {
                Ok(info) => Some(Consumer::at(
                    info,
                    time_of(row.seen_at),
                    time_of(row.expires_at),
                    time_of(row.db_now),
                )),
                Err(error) => {
                    log::warn!("consumer {}: {error}", row.id);
                    None
                }
            })
            .collect();
        Consumer::sort(&mut consumers);
        Ok(consumers)
    }

    fn now(&self) -> Result<SystemTime, Error> {
        with_conn!(self.inner, conn => {
            let n = self.inner.st.now.query()
                .get_result::<Number>(conn)
                .map_err(db_error)?
                .n;
            Ok(time_of(n))
        })
    }

    /// SQLite has one writer at a time: two completing calls in flight wait
    /// for each other's transaction. The servers serve them side by side.
    /// PostgreSQL notifies the end of an awaited job.
    fn capabilities(&self) -> Capabilities {
        let (serial, wakes) = match &self.inner.pool {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(_) => (true, false),
            #[cfg(feature = "postgres")]
            Pools::Postgres(_) => (false, true),
            #[allow(unreachable_patterns)]
            _ => (false, false),
        };
        Capabilities::default()
            .serial_writes(serial)
            .finish_wakeups(wakes)
            .concurrency_limits(true)
            .rate_limits(true)
            .consumer_registry(true)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.temporary {
            return;
        }
        let down = self.schema.down_sql();
        let versions = self.schema.versions();
        let result = (|| -> Result<(), Error> {
            with_conn!(self, conn => {
                for sql in &down {
                    conn.batch_execute(sql).map_err(db_error)?;
                }
                for version in &versions {
                    let _ = Stmt::new("DELETE FROM __diesel_schema_migrations WHERE version = ?")
                        .query()
                        .text(version)
                        .execute(conn);
                }
                Ok(())
            })
        })();
        if let Err(error) = result {
            log::warn!(
                "could not drop the temporary tables of prefix `{}`: {error}",
                self.schema.prefix
            );
        }
    }
}

/// PostgreSQL wake-ups: connections that `LISTEN` on the queue's channel
/// while a waiter waits on them.
///
/// A connection listens only for the length of a wait. The server signals
/// every listening session of the database at each commit that notifies,
/// and every enqueue notifies: sessions left listening between waits (a
/// busy or stopped consumer's) would each cost every enqueue a process
/// wake-up on the server, for notifications nobody reads.
#[cfg(feature = "postgres")]
struct Listen {
    url: String,
    channel: String,
    /// Connections not in use by a waiter, not listening.
    idle: Mutex<Vec<PgConnection>>,
}

#[cfg(feature = "postgres")]
impl Listen {
    /// How often a waiter looks at its connection for a notification. Reading
    /// what the server already sent costs no round trip.
    const POLL: Duration = Duration::from_millis(1);

    fn wait(
        &self,
        backend: &DatabaseQueue,
        queues: &[String],
        timeout: Duration,
    ) -> Result<(), Error> {
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => PgConnection::establish(&self.url).map_err(|e| conn_error(&self.url, &e))?,
        };
        conn.batch_execute(&format!("LISTEN \"{}\"", self.channel))
            .map_err(db_error)?;
        // Notifications from before now are stale; a job that became ready
        // meanwhile is found by the check that follows.
        for note in conn.notifications_iter() {
            note.map_err(db_error)?;
        }
        // a paused queue's jobs are not ready: its waiters wait for the
        // resume's notification, or their timeout
        for name in queues {
            let ready = conn.has_ready(&backend.inner.st, name).map_err(db_error)?;
            if ready {
                self.give_back(conn);
                return Ok(());
            }
        }
        let start = std::time::Instant::now();
        loop {
            if let Some(note) = conn.notifications_iter().next() {
                note.map_err(db_error)?;
                break;
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Self::POLL));
        }
        self.give_back(conn);
        Ok(())
    }

    /// Stops `conn` listening and keeps it for the next waiter; a
    /// connection that cannot is dropped.
    fn give_back(&self, mut conn: PgConnection) {
        if conn
            .batch_execute(&format!("UNLISTEN \"{}\"", self.channel))
            .is_err()
        {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
    }
}

fn open_url(url: &str) -> Result<Arc<dyn BaseQueue>, Error> {
    Ok(Arc::new(DatabaseQueue::open(url)?))
}

outband::register_scheme!("sqlite", open_url);
outband::register_scheme!("postgres", open_url);
outband::register_scheme!("postgresql", open_url);
outband::register_scheme!("mysql", open_url);
outband::register_scheme!("mariadb", open_url);

/// The thread pool a connection pool opens its connections on and closes
/// its idle and old ones with: one thread, where r2d2 would start three.
/// Pools open connections on demand (no minimum to keep up), so one thread
/// serves them, and a consumer that waits on thousands of async jobs keeps
/// its threads few.
fn maintenance_thread() -> Arc<ScheduledThreadPool> {
    Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(1)
            .thread_name_pattern("outband-db-pool")
            .build(),
    )
}

/// The rows PostgreSQL's plan line estimates, from its `rows=`.
fn planned_rows(line: &str) -> Option<u64> {
    let (_, after) = line.split_once("rows=")?;
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    after[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_lost_with_the_server_is_unavailable() {
        let gone = || {
            Box::new(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("Server has gone away".to_owned()),
            ))
        };
        let error = DieselError::RollbackErrorOnCommit {
            rollback_error: gone(),
            commit_error: gone(),
        };
        assert!(matches!(db_error(error), Error::Unavailable(_)));
        let error = DieselError::RollbackErrorOnCommit {
            rollback_error: Box::new(DieselError::NotFound),
            commit_error: Box::new(DieselError::NotFound),
        };
        assert!(matches!(db_error(error), Error::Backend(_)));
    }

    /// What libpq says when the server ends a connection that uses SSL
    /// (by default, also on loopback), or its socket fails.
    #[test]
    fn a_connection_lost_over_ssl_is_unavailable() {
        for message in [
            "SSL connection has been closed unexpectedly",
            "SSL SYSCALL error: EOF detected",
            "could not receive data from server: Connection reset by peer",
        ] {
            let error = DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(message.to_owned()),
            );
            assert!(
                matches!(db_error(error), Error::Unavailable(_)),
                "{message}"
            );
        }
    }

    #[test]
    fn urls_are_parsed() {
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Target::SqliteMemory);
        assert_eq!(
            parse_url("sqlite://data/q.db").unwrap(),
            Target::SqliteFile("data/q.db".into())
        );
        assert_eq!(
            parse_url("sqlite:///tmp/q.db").unwrap(),
            Target::SqliteFile("/tmp/q.db".into())
        );
        assert_eq!(
            parse_url("mariadb://root@h/db").unwrap(),
            Target::Mysql("mysql://root@h/db".into())
        );
        for bad in ["sqlite://", "nope", "redis://x", "sqlite:x.db"] {
            assert!(matches!(parse_url(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn outband_settings_are_taken_out_of_the_query() {
        let (url, settings) =
            split_url("postgres://u@h/db?sslmode=disable&prefix=billing_&retention=60").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=disable");
        assert_eq!(settings.prefix.as_deref(), Some("billing_"));
        assert_eq!(settings.retention, Some(Duration::from_secs(60)));

        let (url, settings) = split_url("sqlite::memory:?prefix=t_").unwrap();
        assert_eq!(url, "sqlite::memory:");
        assert_eq!(settings.prefix.as_deref(), Some("t_"));

        let (url, settings) = split_url("sqlite://q.db").unwrap();
        assert_eq!(
            (url.as_str(), settings),
            ("sqlite://q.db", UrlSettings::default())
        );

        assert!(matches!(
            split_url("mysql://h/db?retention=soon"),
            Err(Error::Config(why)) if why.contains("retention=soon")
        ));
    }

    #[test]
    fn a_prefix_in_the_url_names_the_tables() {
        let backend = DatabaseQueue::open("sqlite::memory:?prefix=from_url_&retention=5").unwrap();
        assert_eq!(backend.prefix(), "from_url_");
        assert_eq!(backend.retention(), Duration::from_secs(5));
        assert!(matches!(
            DatabaseQueue::open("sqlite::memory:?prefix=no-dashes"),
            Err(Error::Config(_))
        ));
    }

    /// The two statements of `recover_expired` read the database's clock
    /// each on its own (PostgreSQL's `clock_timestamp()`, the others per
    /// statement), so a lease can expire between them. The requeue must
    /// leave a job with no attempts left to the next round's dead statement.
    #[test]
    fn a_lease_expiring_between_the_recovery_statements_is_not_requeued_past_its_attempts() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        let last = backend
            .enqueue(NewJob::new("c", vec![1]).queue("q").max_attempts(1))
            .unwrap();
        let more = backend
            .enqueue(NewJob::new("c", vec![2]).queue("q").max_attempts(2))
            .unwrap();
        let claimed = backend.claim("q", 2, Duration::ZERO).unwrap();
        assert_eq!(
            claimed.len(),
            2,
            "both claimed, with leases already expired"
        );

        let requeue_only = || -> Result<usize, Error> {
            with_conn!(backend.inner, conn => {
                backend.inner.st.recover_requeue.query().execute(conn).map_err(db_error)
            })
        };
        assert_eq!(
            requeue_only().unwrap(),
            1,
            "only the job with an attempt left"
        );
        let state = |id| backend.job(id).unwrap().unwrap().state;
        assert_eq!(state(last), JobState::Running);
        assert_eq!(state(more), JobState::Pending);

        let recovered = backend.recover_expired().unwrap();
        assert_eq!((recovered.dead, recovered.requeued), (1, 0));
        assert_eq!(state(last), JobState::Dead);
    }

    /// The recovery step looks for rows of an unknown state code on every
    /// call: through migration `0005_unknown_state`'s partial index, which
    /// holds only them, never by reading the whole jobs table.
    #[test]
    fn rows_of_an_unknown_state_are_found_through_their_index() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        let sql = Dialect::Sqlite.render(backend.prefix(), &crate::sql::unknown_states());
        let plan = sqlite_plan(&backend, &sql);
        assert!(
            plan.iter().any(|step| step.contains("jobs_unknown")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{plan:?}"
        );
    }

    /// The purge finds cancelled jobs through migration `0008_cancel`'s
    /// partial index, which holds only them.
    #[test]
    fn cancelled_jobs_are_purged_through_their_index() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        let sql = Dialect::Sqlite.render(
            backend.prefix(),
            "DELETE FROM {jobs} WHERE state = 4 AND finished_at <= {now} - 1",
        );
        let plan = sqlite_plan(&backend, &sql);
        assert!(
            plan.iter().any(|step| step.contains("jobs_cancelled")),
            "{plan:?}"
        );
    }

    /// A page of a listing walks the primary key between its start and its
    /// floor, in either table, and never an index of `queue` (which the
    /// planner prefers, with no statistics) that would read and sort the
    /// whole queue.
    #[test]
    fn a_listing_walks_the_primary_key() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        for table in ["{jobs}", "{done}"] {
            for sql in [
                crate::sql::list_floor(table),
                crate::sql::list_page(Dialect::Sqlite, table),
            ] {
                let plan = sqlite_plan(&backend, &Dialect::Sqlite.render(backend.prefix(), &sql));
                assert!(
                    plan.iter()
                        .all(|step| step.contains("USING INTEGER PRIMARY KEY")),
                    "{plan:?}"
                );
            }
        }
    }

    /// A claim looks its queue up in `<prefix>paused` by primary key, and
    /// searches the ready index of unlimited jobs (`jobs_free`) for the
    /// name that lookup gives (none while the queue is paused): it scans
    /// neither table.
    #[test]
    fn a_claim_finds_the_pause_and_its_jobs_through_their_keys() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        let plan = sqlite_plan(&backend, &backend.inner.st.claim.text());
        for step in [
            "SEARCH j USING INDEX outband_jobs_free (queue=?)",
            "SEARCH p USING PRIMARY KEY (queue=?)",
        ] {
            assert!(plan.iter().any(|s| s == step), "{step}: {plan:?}");
        }
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN") && step != "SCAN CONSTANT ROW"),
            "{plan:?}"
        );
    }

    /// The look for ready limited jobs that every claim makes goes key by
    /// key: it finds a queue's distinct concurrency and rate keys through
    /// `jobs_limit_keys` and `jobs_rate_keys`, a probe each, counts a key's
    /// running jobs through `jobs_limit` and reads a rate key's `tat` by its
    /// primary key, and searches a key's jobs by the key: a queue without
    /// limited jobs costs it two index probes in one statement. The claim of
    /// unlimited jobs walks `jobs_free`, which holds no limited job.
    #[test]
    fn a_claim_looks_for_limited_jobs_through_their_index() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        let plan = sqlite_plan(&backend, &backend.inner.st.limited_ready.text());
        for step in [
            "SEARCH x USING COVERING INDEX outband_jobs_limit_keys (queue=? AND limit_key>?)",
            "SEARCH m USING COVERING INDEX outband_jobs_limit_keys (queue=? AND limit_key=?)",
            "SEARCH r USING COVERING INDEX outband_jobs_limit (limit_key=? AND state=?)",
            "SEARCH j USING INDEX outband_jobs_limit (limit_key=? AND state=?)",
            "SEARCH x USING COVERING INDEX outband_jobs_rate_keys (queue=? AND rate_key>?)",
            "SEARCH m USING COVERING INDEX outband_jobs_rate_keys (queue=? AND rate_key=?)",
            "SEARCH j USING INDEX outband_jobs_rate_keys (queue=? AND rate_key=?)",
            "SEARCH t USING INDEX sqlite_autoindex_outband_rates_1 (rate_key=?)",
        ] {
            assert!(plan.iter().any(|s| s == step), "{step}: {plan:?}");
        }
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN") && step.contains("outband_jobs")),
            "{plan:?}"
        );
        let plan = sqlite_plan(&backend, &backend.inner.st.claim.text());
        assert!(
            plan.iter()
                .any(|s| s == "SEARCH j USING INDEX outband_jobs_free (queue=?)"),
            "{plan:?}"
        );
    }

    /// SQLite's plan for `sql`, a step a line.
    fn sqlite_plan(backend: &DatabaseQueue, sql: &str) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = diesel::sql_types::Text)]
            detail: String,
        }
        let plan = (|| -> Result<Vec<Plan>, Error> {
            with_conn!(backend.inner, conn => {
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                    .load::<Plan>(conn)
                    .map_err(db_error)
            })
        })()
        .unwrap();
        plan.into_iter().map(|p| p.detail).collect()
    }

    #[test]
    fn sqlite_has_one_completing_call_in_flight() {
        let backend = DatabaseQueue::open("sqlite::memory:").unwrap();
        assert_eq!(backend.capabilities().default_completers(), 1);
    }
}
