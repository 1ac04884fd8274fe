//! The run sink: where the scenarios' commands record each execution, apart
//! from the queue's own bookkeeping, so a scenario can count how often every
//! job really ran.
//!
//! A sink URL is a database URL and a name joined by `#`:
//!
//! | backend | sink URL | one run is |
//! |---|---|---|
//! | SQLite | `sqlite:///tmp/x/jobs.db#runs` | a row `(job, pid)` in table `runs` of that file |
//! | PostgreSQL | `postgres://postgres@127.0.0.1:5432/test#t1_runs` | a row in table `t1_runs` |
//! | MySQL/MariaDB | `mysql://root@127.0.0.1:3306/test#t1_runs` | a row in table `t1_runs` |
//! | Redis | `redis://127.0.0.1:6379/#ns:runs` | `HINCRBY ns:runs <job> 1` |
//!
//! The consumer binary reads its sink URL from [`SINK_ENV`]. A run counts
//! once its record is written; runs beyond the first of a job are
//! duplicates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, MysqlConnection, PgConnection, QueryableByName, RunQueryDsl};
use diesel::{SqliteConnection, sql_query};

/// The environment variable that gives the consumer binary its sink URL.
pub const SINK_ENV: &str = "OUTBAND_RELIABILITY_SINK";

/// Connections a sink keeps: enough that a consumer's threads rarely wait
/// for one, few enough for a shared database server.
const CONNECTIONS: usize = 4;

/// How long SQLite waits for the file's write lock, which the queue shares.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// A failure of the sink: a bad URL, or its database or Redis refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink URL is malformed; retrying cannot help.
    #[error("bad sink URL `{0}`: expected <database URL>#<table or key>")]
    Url(String),
    /// The SQL database failed; a retry may succeed.
    #[error("sink database: {0}")]
    Database(String),
    /// Redis failed; a retry may succeed.
    #[error("sink Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

fn db_error(error: impl std::fmt::Display) -> SinkError {
    SinkError::Database(error.to_string())
}

/// Which store the sink writes to, and how to reach it.
#[derive(Clone, Debug)]
enum Target {
    Sqlite(String),
    Postgres(String),
    Mysql(String),
    Redis(Box<redis::Client>),
}

/// One open connection of a sink.
enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    Mysql(MysqlConnection),
    Redis(redis::Connection),
}

impl Conn {
    fn open(target: &Target) -> Result<Self, SinkError> {
        Ok(match target {
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path).map_err(db_error)?;
                // as the queue's own connections: a commit in WAL mode
                // survives the process's death, if not the machine's
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL;"
                ))
                .map_err(db_error)?;
                Self::Sqlite(conn)
            }
            Target::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(db_error)?;
                // A record must survive the consumer's death, not the
                // server's: the server is never crashed in these scenarios.
                conn.batch_execute("SET synchronous_commit = off")
                    .map_err(db_error)?;
                Self::Postgres(conn)
            }
            Target::Mysql(url) => Self::Mysql(MysqlConnection::establish(url).map_err(db_error)?),
            Target::Redis(client) => Self::Redis(client.get_connection()?),
        })
    }

    /// Runs one SQL statement; not for Redis.
    fn execute(&mut self, statement: &str) -> Result<(), SinkError> {
        match self {
            Self::Sqlite(c) => sql_query(statement).execute(c).map_err(db_error)?,
            Self::Postgres(c) => sql_query(statement).execute(c).map_err(db_error)?,
            Self::Mysql(c) => sql_query(statement).execute(c).map_err(db_error)?,
            Self::Redis(_) => unreachable!("SQL statement on a Redis sink"),
        };
        Ok(())
    }
}

/// One row of the per-job run counts.
#[derive(QueryableByName)]
struct RunCount {
    #[diesel(sql_type = BigInt)]
    job: i64,
    #[diesel(sql_type = BigInt)]
    runs: i64,
}

/// A count.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A handle on one sink: a table or a Redis hash, with a few connections.
pub struct Sink {
    target: Target,
    /// The table (SQL) or key (Redis).
    name: String,
    conns: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("target", &self.target)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Opens the sink at `url` (see the [module docs](self)) and checks
    /// that its store answers.
    pub fn open(url: &str) -> Result<Self, SinkError> {
        let (database, name) = url
            .rsplit_once('#')
            .filter(|(database, name)| !database.is_empty() && !name.is_empty())
            .ok_or_else(|| SinkError::Url(url.to_owned()))?;
        let target = match database.split_once("://").map(|(scheme, _)| scheme) {
            Some("sqlite") => Target::Sqlite(database["sqlite://".len()..].to_owned()),
            Some("postgres" | "postgresql") => Target::Postgres(database.to_owned()),
            Some("mysql" | "mariadb") => {
                Target::Mysql(database.replacen("mariadb://", "mysql://", 1))
            }
            Some("redis") => Target::Redis(Box::new(redis::Client::open(database)?)),
            _ => return Err(SinkError::Url(url.to_owned())),
        };
        let is_sql = !matches!(target, Target::Redis(_));
        if is_sql && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SinkError::Url(url.to_owned()));
        }
        let sink = Sink {
            target,
            name: name.to_owned(),
            conns: (0..CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        };
        sink.with_conn(|_| Ok(()))?;
        Ok(sink)
    }

    /// Opens the sink named by the [`SINK_ENV`] environment variable.
    pub fn from_env() -> Result<Self, SinkError> {
        let url = std::env::var(SINK_ENV).map_err(|_| SinkError::Url(format!("${SINK_ENV}")))?;
        Self::open(&url)
    }

    /// Runs `f` on one of the sink's connections, opening it if needed; a
    /// connection that failed is dropped, so the next call reconnects.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, SinkError>,
    ) -> Result<T, SinkError> {
        let slots = self.conns.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % slots;
        // take a free connection if there is one, else wait for ours
        let mut slot = (0..slots)
            .find_map(|i| self.conns[(first + i) % slots].try_lock().ok())
            .unwrap_or_else(|| {
                self.conns[first]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
        if slot.is_none() {
            *slot = Some(Conn::open(&self.target)?);
        }
        let Some(conn) = slot.as_mut() else {
            unreachable!("the connection was just opened")
        };
        let result = f(conn);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Creates the sink, empty: the table (replacing one of the same name)
    /// or the Redis key.
    pub fn create(&self) -> Result<(), SinkError> {
        self.destroy()?;
        let name = &self.name;
        self.with_conn(|conn| match conn {
            Conn::Redis(_) => Ok(()),
            // A record must survive the consumer's death, not the server's
            // (the scenarios never crash it): a MEMORY table spares MySQL a
            // log flush per run.
            Conn::Mysql(_) => conn.execute(&format!(
                "CREATE TABLE {name} (job BIGINT NOT NULL, pid BIGINT NOT NULL) ENGINE = MEMORY"
            )),
            sql => sql.execute(&format!(
                "CREATE TABLE {name} (job BIGINT NOT NULL, pid BIGINT NOT NULL)"
            )),
        })
    }

    /// Records one run of job `job` by this process.
    pub fn record(&self, job: u64) -> Result<(), SinkError> {
        let (name, pid) = (&self.name, std::process::id());
        self.with_conn(|conn| match conn {
            Conn::Redis(c) => Ok(redis::cmd("HINCRBY")
                .arg(name)
                .arg(job)
                .arg(1)
                .query::<i64>(c)
                .map(drop)?),
            sql => sql.execute(&format!(
                "INSERT INTO {name} (job, pid) VALUES ({job}, {pid})"
            )),
        })
    }

    /// How many times each job ran; jobs that never ran are absent.
    pub fn runs(&self) -> Result<HashMap<u64, u64>, SinkError> {
        let name = &self.name;
        let query = format!("SELECT job, COUNT(*) AS runs FROM {name} GROUP BY job");
        let rows: Vec<RunCount> = self.with_conn(|conn| match conn {
            Conn::Sqlite(c) => sql_query(&query).load(c).map_err(db_error),
            Conn::Postgres(c) => sql_query(&query).load(c).map_err(db_error),
            Conn::Mysql(c) => sql_query(&query).load(c).map_err(db_error),
            Conn::Redis(c) => {
                let counts: HashMap<u64, u64> = redis::cmd("HGETALL").arg(name).query(c)?;
                Ok(counts
                    .into_iter()
                    .map(|(job, runs)| RunCount {
                        job: job as i64,
                        runs: runs as i64,
                    })
                    .collect())
            }
        })?;
        Ok(rows
            .into_iter()
            .map(|row| (row.job as u64, row.runs as u64))
            .collect())
    }

    /// How many distinct jobs ran at least once: a cheap measure of
    /// progress.
    pub fn jobs_recorded(&self) -> Result<u64, SinkError> {
        let name = &self.name;
        let query = format!("SELECT COUNT(DISTINCT job) AS n FROM {name}");
        let n: i64 = self.with_conn(|conn| {
            match conn {
                Conn::Sqlite(c) => sql_query(&query).get_result::<Count>(c).map(|c| c.n),
                Conn::Postgres(c) => sql_query(&query).get_result::<Count>(c).map(|c| c.n),
                Conn::Mysql(c) => sql_query(&query).get_result::<Count>(c).map(|c| c.n),
                Conn::Redis(c) => return Ok(redis::cmd("HLEN").arg(name).query(c)?),
            }
            .map_err(db_error)
        })?;
        Ok(n.unsigned_abs())
    }

    /// Removes the sink: drops the table or deletes the key.
    pub fn destroy(&self) -> Result<(), SinkError> {
        let name = &self.name;
        self.with_conn(|conn| match conn {
            Conn::Redis(c) => Ok(redis::cmd("DEL").arg(name).query::<i64>(c).map(drop)?),
            sql => sql.execute(&format!("DROP TABLE IF EXISTS {name}")),
        })
    }
}
