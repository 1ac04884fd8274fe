//! The schema, as diesel migrations embedded in the crate.
//!
//! The migrations' SQL lives in `migrations/<dialect>/*.sql` and is compiled
//! in with `include_str!`. Because the table names carry a configurable
//! prefix, the migrations are served by a [`MigrationSource`] that renders
//! them for the prefix, and diesel_migrations' [`MigrationHarness`] runs them
//! and records them in `__diesel_schema_migrations` under a version that
//! names the prefix (`outband_<prefix>_0001`), so several prefixes share one
//! database.
//!
//! The jobs table keeps times as microseconds since the Unix epoch (`BIGINT`)
//! read from the database's clock, and states as small integers:
//! 0 `pending`, 1 `running`, 2 `done`, 3 `dead`, 4 `cancelled`
//! (`0008_cancel`); a row of any other code is malformed, and the recovery
//! step moves it to `dead`. Two columns, `progress` and `progress_note`
//! (`0006_progress`), hold the latest attempt's progress report, NULL while
//! it has made none; `timeout_ms` (`0007_timeout`), the job's own timeout in
//! whole milliseconds, NULL when it has none. The jobs table alone has
//! `cancel_reason` (`0008_cancel`): why a running job was asked to cancel,
//! NULL while it was not; and on PostgreSQL `awaited` (`0009_awaited`):
//! whether someone waits for the job's end, which its end then notifies.
//!
//! `<prefix>paused` (`0010_paused`) holds a row per paused queue: its name,
//! the primary key, and `paused_at`, when it was paused, in microseconds.
//! The claim statements take no job of a queue that has a row; on
//! PostgreSQL, deleting a row (a resume) notifies the channel idle
//! consumers listen on.
//!
//! `<prefix>unique_keys` (`0011_unique`) holds a row per unique key an
//! enqueue took: the key (`unique_key`, the primary key; MySQL: `VARBINARY(512)`,
//! compared byte for byte) and `job_id`, the last job stored with it, which
//! holds the key while its state says so and not once it is deleted. The
//! statements that delete jobs delete their rows.
//!
//! `0012_concurrency` gives the jobs table a job's concurrency limit:
//! `limit_key` (MySQL: `VARBINARY(512)`) and `limit_max`, NULL for a job
//! without one, with the indexes `jobs_limit` (a key's running jobs) and
//! `jobs_limited` (a queue's pending limited jobs); on MySQL the table
//! `<prefix>limit_locks`, a row per key hash that claims of limited jobs
//! lock; on PostgreSQL, triggers that notify when a running limited job
//! ends while jobs of its key are pending.
//!
//! `0013_rate` gives the jobs table a job's rate limit: `rate_key` (MySQL:
//! `VARBINARY(512)`), `rate_max` and `rate_per_us`, NULL for a job without
//! one, with the index `jobs_rated` (a queue's pending rate-limited jobs);
//! and the table `<prefix>rates`, a row per rate key ever started: the key
//! and `tat`, its theoretical arrival time in microseconds.
//!
//! `0014_limit_keys` adds the indexes `jobs_free` (a queue's pending jobs
//! without a limit, in claim order; MySQL: through a generated column
//! `limited`, first after the state), `jobs_limit_keys` and `jobs_rate_keys`
//! (the distinct keys of a queue's pending limited jobs).
//!
//! `0015_consumers` adds `<prefix>consumers`, the consumer registry: a row
//! per registered consumer, its id, its info as JSON, and when it was seen
//! and when its registration's ttl ends, in microseconds.
//!
//! `0016_enqueue_notify` (PostgreSQL) drops the statement trigger on inserts
//! into the jobs table and its function: the statements that insert jobs
//! notify the channel idle consumers listen on themselves.

use std::fmt;

use diesel::backend::Backend;
use diesel::connection::BoxableConnection;
use diesel::migration::{
    self, Migration, MigrationMetadata, MigrationName, MigrationSource, MigrationVersion,
};

use crate::sql::Dialect;

/// One migration: its version and its rendered SQL.
struct Step {
    version: String,
    up: String,
    down: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.version)
    }
}

impl MigrationName for Step {
    fn version(&self) -> MigrationVersion<'_> {
        MigrationVersion::from(self.version.as_str())
    }
}

impl MigrationMetadata for Step {}

impl<DB: Backend> Migration<DB> for Step {
    fn run(&self, conn: &mut dyn BoxableConnection<DB>) -> migration::Result<()> {
        conn.batch_execute(&self.up)?;
        Ok(())
    }

    fn revert(&self, conn: &mut dyn BoxableConnection<DB>) -> migration::Result<()> {
        conn.batch_execute(&self.down)?;
        Ok(())
    }

    fn metadata(&self) -> &dyn MigrationMetadata {
        self
    }

    fn name(&self) -> &dyn MigrationName {
        self
    }
}

/// The embedded migrations, rendered for one dialect and table prefix.
#[derive(Clone, Debug)]
pub(crate) struct Schema {
    pub(crate) dialect: Dialect,
    pub(crate) prefix: String,
}

/// `(name, up, down)` per dialect, in order.
fn sources(dialect: Dialect) -> &'static [(&'static str, &'static str, &'static str)] {
    match dialect {
        Dialect::Sqlite => &[
            (
                "0001_jobs",
                include_str!("../migrations/sqlite/0001_jobs.up.sql"),
                include_str!("../migrations/sqlite/0001_jobs.down.sql"),
            ),
            (
                "0002_partial_indexes",
                include_str!("../migrations/sqlite/0002_partial_indexes.up.sql"),
                include_str!("../migrations/sqlite/0002_partial_indexes.down.sql"),
            ),
            (
                "0003_done_table",
                include_str!("../migrations/sqlite/0003_done_table.up.sql"),
                include_str!("../migrations/sqlite/0003_done_table.down.sql"),
            ),
            (
                "0005_unknown_state",
                include_str!("../migrations/sqlite/0005_unknown_state.up.sql"),
                include_str!("../migrations/sqlite/0005_unknown_state.down.sql"),
            ),
            (
                "0006_progress",
                include_str!("../migrations/sqlite/0006_progress.up.sql"),
                include_str!("../migrations/sqlite/0006_progress.down.sql"),
            ),
            (
                "0007_timeout",
                include_str!("../migrations/sqlite/0007_timeout.up.sql"),
                include_str!("../migrations/sqlite/0007_timeout.down.sql"),
            ),
            (
                "0008_cancel",
                include_str!("../migrations/sqlite/0008_cancel.up.sql"),
                include_str!("../migrations/sqlite/0008_cancel.down.sql"),
            ),
            (
                "0010_paused",
                include_str!("../migrations/sqlite/0010_paused.up.sql"),
                include_str!("../migrations/sqlite/0010_paused.down.sql"),
            ),
            (
                "0011_unique",
                include_str!("../migrations/sqlite/0011_unique.up.sql"),
                include_str!("../migrations/sqlite/0011_unique.down.sql"),
            ),
            (
                "0012_concurrency",
                include_str!("../migrations/sqlite/0012_concurrency.up.sql"),
                include_str!("../migrations/sqlite/0012_concurrency.down.sql"),
            ),
            (
                "0013_rate",
                include_str!("../migrations/sqlite/0013_rate.up.sql"),
                include_str!("../migrations/sqlite/0013_rate.down.sql"),
            ),
            (
                "0014_limit_keys",
                include_str!("../migrations/sqlite/0014_limit_keys.up.sql"),
                include_str!("../migrations/sqlite/0014_limit_keys.down.sql"),
            ),
            (
                "0015_consumers",
                include_str!("../migrations/sqlite/0015_consumers.up.sql"),
                include_str!("../migrations/sqlite/0015_consumers.down.sql"),
            ),
        ],
        Dialect::Postgres => &[
            (
                "0001_jobs",
                include_str!("../migrations/postgres/0001_jobs.up.sql"),
                include_str!("../migrations/postgres/0001_jobs.down.sql"),
            ),
            (
                "0002_partial_indexes",
                include_str!("../migrations/postgres/0002_partial_indexes.up.sql"),
                include_str!("../migrations/postgres/0002_partial_indexes.down.sql"),
            ),
            (
                "0003_done_table",
                include_str!("../migrations/postgres/0003_done_table.up.sql"),
                include_str!("../migrations/postgres/0003_done_table.down.sql"),
            ),
            (
                "0004_claim_index",
                include_str!("../migrations/postgres/0004_claim_index.up.sql"),
                include_str!("../migrations/postgres/0004_claim_index.down.sql"),
            ),
            (
                "0005_unknown_state",
                include_str!("../migrations/postgres/0005_unknown_state.up.sql"),
                include_str!("../migrations/postgres/0005_unknown_state.down.sql"),
            ),
            (
                "0006_progress",
                include_str!("../migrations/postgres/0006_progress.up.sql"),
                include_str!("../migrations/postgres/0006_progress.down.sql"),
            ),
            (
                "0007_timeout",
                include_str!("../migrations/postgres/0007_timeout.up.sql"),
                include_str!("../migrations/postgres/0007_timeout.down.sql"),
            ),
            (
                "0008_cancel",
                include_str!("../migrations/postgres/0008_cancel.up.sql"),
                include_str!("../migrations/postgres/0008_cancel.down.sql"),
            ),
            (
                "0009_awaited",
                include_str!("../migrations/postgres/0009_awaited.up.sql"),
                include_str!("../migrations/postgres/0009_awaited.down.sql"),
            ),
            (
                "0010_paused",
                include_str!("../migrations/postgres/0010_paused.up.sql"),
                include_str!("../migrations/postgres/0010_paused.down.sql"),
            ),
            (
                "0011_unique",
                include_str!("../migrations/postgres/0011_unique.up.sql"),
                include_str!("../migrations/postgres/0011_unique.down.sql"),
            ),
            (
                "0012_concurrency",
                include_str!("../migrations/postgres/0012_concurrency.up.sql"),
                include_str!("../migrations/postgres/0012_concurrency.down.sql"),
            ),
            (
                "0013_rate",
                include_str!("../migrations/postgres/0013_rate.up.sql"),
                include_str!("../migrations/postgres/0013_rate.down.sql"),
            ),
            (
                "0014_limit_keys",
                include_str!("../migrations/postgres/0014_limit_keys.up.sql"),
                include_str!("../migrations/postgres/0014_limit_keys.down.sql"),
            ),
            (
                "0015_consumers",
                include_str!("../migrations/postgres/0015_consumers.up.sql"),
                include_str!("../migrations/postgres/0015_consumers.down.sql"),
            ),
            (
                "0016_enqueue_notify",
                include_str!("../migrations/postgres/0016_enqueue_notify.up.sql"),
                include_str!("../migrations/postgres/0016_enqueue_notify.down.sql"),
            ),
        ],
        Dialect::Mysql => &[
            (
                "0001_jobs",
                include_str!("../migrations/mysql/0001_jobs.up.sql"),
                include_str!("../migrations/mysql/0001_jobs.down.sql"),
            ),
            (
                "0003_done_table",
                include_str!("../migrations/mysql/0003_done_table.up.sql"),
                include_str!("../migrations/mysql/0003_done_table.down.sql"),
            ),
            (
                "0004_key_locks",
                include_str!("../migrations/mysql/0004_key_locks.up.sql"),
                include_str!("../migrations/mysql/0004_key_locks.down.sql"),
            ),
            (
                "0006_progress",
                include_str!("../migrations/mysql/0006_progress.up.sql"),
                include_str!("../migrations/mysql/0006_progress.down.sql"),
            ),
            (
                "0007_timeout",
                include_str!("../migrations/mysql/0007_timeout.up.sql"),
                include_str!("../migrations/mysql/0007_timeout.down.sql"),
            ),
            (
                "0008_cancel",
                include_str!("../migrations/mysql/0008_cancel.up.sql"),
                include_str!("../migrations/mysql/0008_cancel.down.sql"),
            ),
            (
                "0010_paused",
                include_str!("../migrations/mysql/0010_paused.up.sql"),
                include_str!("../migrations/mysql/0010_paused.down.sql"),
            ),
            (
                "0011_unique",
                include_str!("../migrations/mysql/0011_unique.up.sql"),
                include_str!("../migrations/mysql/0011_unique.down.sql"),
            ),
            (
                "0012_concurrency",
                include_str!("../migrations/mysql/0012_concurrency.up.sql"),
                include_str!("../migrations/mysql/0012_concurrency.down.sql"),
            ),
            (
                "0013_rate",
                include_str!("../migrations/mysql/0013_rate.up.sql"),
                include_str!("../migrations/mysql/0013_rate.down.sql"),
            ),
            (
                "0014_limit_keys",
                include_str!("../migrations/mysql/0014_limit_keys.up.sql"),
                include_str!("../migrations/mysql/0014_limit_keys.down.sql"),
            ),
            (
                "0015_consumers",
                include_str!("../migrations/mysql/0015_consumers.up.sql"),
                include_str!("../migrations/mysql/0015_consumers.down.sql"),
            ),
        ],
    }
}

impl Schema {
    fn steps(&self) -> Vec<Step> {
        sources(self.dialect)
            .iter()
            .map(|(name, up, down)| Step {
                version: self.version(name),
                up: up.replace("{p}", &self.prefix),
                down: down.replace("{p}", &self.prefix),
            })
            .collect()
    }

    fn version(&self, name: &str) -> String {
        format!("outband_{}_{name}", self.prefix)
    }

    /// The versions this schema records, for removing them with the tables.
    pub(crate) fn versions(&self) -> Vec<String> {
        sources(self.dialect)
            .iter()
            .map(|(name, _, _)| self.version(name))
            .collect()
    }

    /// The SQL that drops every table, in reverse order.
    pub(crate) fn down_sql(&self) -> Vec<String> {
        self.steps().into_iter().rev().map(|s| s.down).collect()
    }
}

impl<DB: Backend> MigrationSource<DB> for Schema {
    fn migrations(&self) -> migration::Result<Vec<Box<dyn Migration<DB>>>> {
        Ok(self
            .steps()
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn Migration<DB>>)
            .collect())
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
        diesel::sql_query(sql)
            .get_result::<Count>(conn)
            .expect(sql)
            .n
    }

    #[test]
    fn every_migration_version_fits_the_column_with_the_longest_prefix() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let schema = Schema {
                dialect,
                prefix: "p".repeat(crate::sql::MAX_PREFIX),
            };
            for version in schema.versions() {
                // __diesel_schema_migrations.version is VARCHAR(50)
                assert!(
                    version.len() <= 50,
                    "{version}: {} characters",
                    version.len()
                );
            }
        }
    }

    /// `0012_concurrency` goes down and up again on a table holding a
    /// limited job: its columns and indexes go and come back.
    #[test]
    fn the_concurrency_migration_goes_down_and_up() {
        let schema = Schema {
            dialect: Dialect::Sqlite,
            prefix: "m_".to_owned(),
        };
        let steps = schema.steps();
        let limits = steps
            .iter()
            .find(|s| s.version.ends_with("0012_concurrency"))
            .expect("0012_concurrency");
        let mut conn = SqliteConnection::establish(":memory:").expect("open");
        // every migration up to this one: a later one may need its columns
        for step in &steps {
            conn.batch_execute(&step.up).expect("every migration");
            if step.version == limits.version {
                break;
            }
        }
        let limited = "INSERT INTO m_jobs (command, args, queue, max_attempts, run_at, \
                       enqueued_at, limit_key, limit_max) VALUES ('a', X'01', 'q', 1, 0, 0, 'k', 2)";
        conn.batch_execute(limited).expect("a limited job");
        let indexes = "SELECT COUNT(*) AS n FROM sqlite_master \
                       WHERE name IN ('m_jobs_limit', 'm_jobs_limited')";
        assert_eq!(count(&mut conn, indexes), 2);
        conn.batch_execute(&limits.down).expect("down");
        assert_eq!(count(&mut conn, indexes), 0);
        assert!(
            conn.batch_execute("SELECT limit_key FROM m_jobs").is_err(),
            "the columns are gone"
        );
        assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM m_jobs"), 1);
        conn.batch_execute(&limits.up).expect("up again");
        conn.batch_execute(limited).expect("a limited job again");
        assert_eq!(
            count(
                &mut conn,
                "SELECT COUNT(*) AS n FROM m_jobs WHERE limit_key = 'k' AND limit_max = 2"
            ),
            1
        );
    }

    /// `0013_rate` goes down and up again on a table holding a
    /// rate-limited job and a key's `tat`: its columns, index and table go
    /// and come back.
    #[test]
    fn the_rate_migration_goes_down_and_up() {
        let schema = Schema {
            dialect: Dialect::Sqlite,
            prefix: "m_".to_owned(),
        };
        let steps = schema.steps();
        let rates = steps
            .iter()
            .find(|s| s.version.ends_with("0013_rate"))
            .expect("0013_rate");
        let mut conn = SqliteConnection::establish(":memory:").expect("open");
        // every migration up to this one: a later one may need its columns
        for step in &steps {
            conn.batch_execute(&step.up).expect("every migration");
            if step.version == rates.version {
                break;
            }
        }
        let rated = "INSERT INTO m_jobs (command, args, queue, max_attempts, run_at, \
                     enqueued_at, rate_key, rate_max, rate_per_us) \
                     VALUES ('a', X'01', 'q', 1, 0, 0, 'k', 2, 1000000); \
                     INSERT INTO m_rates (rate_key, tat) VALUES ('k', 5)";
        conn.batch_execute(rated).expect("a rate-limited job");
        let objects = "SELECT COUNT(*) AS n FROM sqlite_master \
                       WHERE name IN ('m_jobs_rated', 'm_rates')";
        assert_eq!(count(&mut conn, objects), 2);
        conn.batch_execute(&rates.down).expect("down");
        assert_eq!(count(&mut conn, objects), 0);
        assert!(
            conn.batch_execute("SELECT rate_key FROM m_jobs").is_err(),
            "the columns are gone"
        );
        assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM m_jobs"), 1);
        conn.batch_execute(&rates.up).expect("up again");
        conn.batch_execute(rated).expect("a rate-limited job again");
        assert_eq!(
            count(
                &mut conn,
                "SELECT COUNT(*) AS n FROM m_jobs WHERE rate_key = 'k' AND rate_max = 2 \
                 AND rate_per_us = 1000000"
            ),
            1
        );
    }

    /// `0014_limit_keys` goes down and up again on a table holding a
    /// limited job: its three indexes go and come back.
    #[test]
    fn the_limit_keys_migration_goes_down_and_up() {
        let schema = Schema {
            dialect: Dialect::Sqlite,
            prefix: "m_".to_owned(),
        };
        let steps = schema.steps();
        let keys = steps
            .iter()
            .find(|s| s.version.ends_with("0014_limit_keys"))
            .expect("0014_limit_keys");
        let mut conn = SqliteConnection::establish(":memory:").expect("open");
        for step in &steps {
            conn.batch_execute(&step.up).expect("every migration");
        }
        conn.batch_execute(
            "INSERT INTO m_jobs (command, args, queue, max_attempts, run_at, enqueued_at, \
             limit_key, limit_max) VALUES ('a', X'01', 'q', 1, 0, 0, 'k', 2)",
        )
        .expect("a limited job");
        let indexes = "SELECT COUNT(*) AS n FROM sqlite_master \
                       WHERE name IN ('m_jobs_free', 'm_jobs_limit_keys', 'm_jobs_rate_keys')";
        assert_eq!(count(&mut conn, indexes), 3);
        conn.batch_execute(&keys.down).expect("down");
        assert_eq!(count(&mut conn, indexes), 0);
        conn.batch_execute(&keys.up).expect("up again");
        assert_eq!(count(&mut conn, indexes), 3);
        assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM m_jobs"), 1);
    }

    #[test]
    fn the_done_table_migration_moves_finished_jobs() {
        let schema = Schema {
            dialect: Dialect::Sqlite,
            prefix: "m_".to_owned(),
        };
        let steps = schema.steps();
        let (before, after) = steps.split_at(2);
        let mut conn = SqliteConnection::establish(":memory:").expect("open");
        for step in before {
            conn.batch_execute(&step.up).expect("older migrations");
        }
        conn.batch_execute(
            "INSERT INTO m_jobs (command, args, queue, max_attempts, state, run_at, enqueued_at, \
             finished_at, duration_us) VALUES \
             ('a', X'01', 'q', 1, 2, 0, 0, 5, 9), ('b', X'01', 'q', 1, 0, 0, 0, NULL, NULL), \
             ('c', X'01', 'q', 1, 3, 0, 0, 6, NULL)",
        )
        .expect("rows of every kind");
        for step in after {
            conn.batch_execute(&step.up)
                .expect("the done table migration");
        }
        assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM m_jobs"), 2);
        assert_eq!(
            count(
                &mut conn,
                "SELECT COUNT(*) AS n FROM m_done WHERE command = 'a' AND duration_us = 9"
            ),
            1
        );
        for step in after.iter().rev() {
            conn.batch_execute(&step.down).expect("and back");
        }
        assert_eq!(
            count(
                &mut conn,
                "SELECT COUNT(*) AS n FROM m_jobs WHERE state = 2"
            ),
            1
        );
    }
}
