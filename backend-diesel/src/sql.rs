//! The SQL text of every statement, per dialect, built once per table prefix.
//!
//! Statements are written once with `?` placeholders, `{jobs}` / `{done}` /
//! `{keys}` / `{ticks}` / `{paused}` / `{unique}` / `{limit_locks}` /
//! `{rates}` / `{consumers}` for the table
//! names, `{running}` for the jobs table where a key's running jobs are
//! counted, `{now}` for the
//! database's clock in microseconds since the Unix epoch and `{dual}` for
//! the table a `SELECT` of values names (MySQL's `FROM DUAL`);
//! [`Dialect::render`] turns them into one dialect's text. Only the table
//! prefix is spliced into SQL, and it is checked to be an identifier first
//! ([`validate_prefix`]); every value is a bind parameter.

use outband::{Error, JobState};

use crate::prepared::Stmt;

/// The SQL dialects this crate speaks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// The longest prefix accepted. The prefix names the migrations diesel
/// records, `outband_<prefix>_0002_partial_indexes` being the longest, in a
/// `VARCHAR(50)` column that PostgreSQL and MySQL enforce; every derived
/// table, index, trigger and function name then stays well under their
/// 63/64-character limits too.
pub(crate) const MAX_PREFIX: usize = 21;

/// Checks that `prefix` is an identifier fragment: ASCII letters, digits and
/// `_`, not starting with a digit, at most [`MAX_PREFIX`] (21) characters.
/// Empty is allowed.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), Error> {
    let ok = prefix.len() <= MAX_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "table prefix `{prefix}` is not an identifier: use ASCII letters, digits and `_`, \
             not starting with a digit, at most {MAX_PREFIX} characters"
        )))
    }
}

impl Dialect {
    /// The database's clock, in microseconds since the Unix epoch.
    fn now(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
            Self::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
            Self::Mysql => "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
        }
    }

    /// What a `SELECT` of values with a `WHERE` names as its table: MySQL
    /// asks for one (`DUAL`) where the others take none.
    fn dual(self) -> &'static str {
        match self {
            Self::Mysql => " FROM DUAL",
            _ => "",
        }
    }

    /// The jobs table as `r`, where a concurrency key's running jobs are
    /// counted: through `jobs_limit`, which MariaDB passes over for
    /// `jobs_lease` (every running job) when its statistics hold few
    /// running jobs.
    fn running(self) -> &'static str {
        match self {
            Self::Mysql => "{jobs} r FORCE INDEX ({jobs}_limit)",
            _ => "{jobs} r",
        }
    }

    /// [`UNLIMITED`] in this dialect: MySQL, which has no partial index,
    /// names the generated column `limited` that its `jobs_free` starts
    /// with, after the queue and the state.
    fn unlimited(self) -> &'static str {
        match self {
            Self::Mysql => " AND j.limited = 0",
            _ => UNLIMITED,
        }
    }

    /// Integer division: MySQL's `/` gives a decimal.
    fn div(self) -> &'static str {
        match self {
            Self::Mysql => "DIV",
            _ => "/",
        }
    }

    /// The type name for an integer `CAST`.
    fn bigint(self) -> &'static str {
        match self {
            Self::Mysql => "SIGNED",
            _ => "BIGINT",
        }
    }

    /// `template` in this dialect; its `?` placeholders stay as they are, for
    /// diesel's query builder to number.
    pub(crate) fn render(self, prefix: &str, template: &str) -> String {
        template
            .replace("{running}", self.running())
            .replace("{jobs}", &format!("{prefix}jobs"))
            .replace("{done}", &format!("{prefix}done"))
            .replace("{keys}", &format!("{prefix}keys"))
            .replace("{ticks}", &format!("{prefix}ticks"))
            .replace("{paused}", &format!("{prefix}paused"))
            .replace("{unique}", &format!("{prefix}unique_keys"))
            .replace("{limit_locks}", &format!("{prefix}limit_locks"))
            .replace("{rates}", &format!("{prefix}rates"))
            .replace("{consumers}", &format!("{prefix}consumers"))
            .replace("{tolerance}", TOLERANCE)
            .replace("{div}", self.div())
            .replace("{now}", self.now())
            .replace("{dual}", self.dual())
            .replace("{bigint}", self.bigint())
    }
}

/// A pending job of `j` that may run now: its queue is not paused, its time
/// has come and no other job with its ordering key is running or waiting
/// ahead of it (a finished one, done, dead or cancelled, holds no key).
/// Binds: queue, queue.
///
/// `j.queue` is compared with a subquery that gives the queue's name, or no
/// row (NULL) while the queue is paused, so that the search of the ready
/// index has no key to look up in a paused queue. The subquery does not
/// depend on `j`: each database evaluates it once per statement, a
/// primary-key lookup in `{paused}`, before it reads any job (PostgreSQL:
/// an init plan; MySQL: at optimization, a const-table read; SQLite: the
/// index search's key). So a paused queue's claim reads no job, and a
/// running one's costs one lookup more. SQLite would test a condition
/// beside the queue's, `AND NOT EXISTS (…)`, at each job it reads: all the
/// jobs of a paused queue. A locking read does not lock the row the
/// subquery finds (PostgreSQL's `FOR UPDATE` covers its own `FROM` only,
/// InnoDB reads a subquery without locks under `READ COMMITTED`), so `SKIP
/// LOCKED` never skips it.
const READY: &str = "j.queue = (SELECT ?{dual} WHERE NOT EXISTS \
    (SELECT 1 FROM {paused} p WHERE p.queue = ?)) \
    AND j.state = 0 AND j.run_at <= {now} \
    AND (j.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM {jobs} o \
    WHERE o.queue = j.queue AND o.ordering_key = j.ordering_key \
    AND (o.state = 1 OR (o.state = 0 AND o.id < j.id))))";

/// [`READY`] for a claim in the statement that also deletes the finished
/// jobs `d`: they no longer own their ordering keys, although the claim's
/// snapshot still shows them running. Binds: queue, queue.
const READY_AFTER_DONE: &str = "j.queue = (SELECT ?{dual} WHERE NOT EXISTS \
    (SELECT 1 FROM {paused} p WHERE p.queue = ?)) \
    AND j.state = 0 AND j.run_at <= {now} \
    AND (j.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM {jobs} o \
    WHERE o.queue = j.queue AND o.ordering_key = j.ordering_key \
    AND (o.state = 1 OR (o.state = 0 AND o.id < j.id)) \
    AND o.id NOT IN (SELECT id FROM d)))";

/// The claim statements' own condition beside [`READY`]: the job has no
/// concurrency limit and no rate limit. Limited jobs are claimed by a step
/// of their own that serializes per key
/// ([`ClaimLimited`](crate::store::ClaimLimited)), so that this claim, the
/// only one of a queue without limited jobs, stays as it was.
///
/// PostgreSQL and SQLite find these jobs in `jobs_free` (migration
/// `0014_limit_keys`), whose condition this is; MySQL in its `jobs_free`,
/// through the generated column `limited` ([`Dialect::unlimited`]).
const UNLIMITED: &str = " AND j.limit_key IS NULL AND j.rate_key IS NULL";

/// How many binds [`limited_ready`] takes, each the queue.
pub(crate) const LIMITED_READY_BINDS: usize = 12;

/// Whether a ready limited job of a queue may start now, as far as a read
/// without locks can tell, decided per key: the distinct concurrency keys
/// (`lk`) and rate keys (`rk`) of the queue's pending jobs, found one index
/// probe each (`jobs_limit_keys`, `jobs_rate_keys`); a concurrency key
/// whose running jobs reach the greatest `limit_max` of its pending ones,
/// or a rate key whose `tat` is further ahead than any of its pending
/// jobs' tolerance (below a tenth of the period, [`TOLERANCE`]), is passed
/// over without a look at its jobs; only then are the key's ready jobs
/// searched for one that [`ROOM`] and [`TURN`] let start. So jobs that
/// cannot start cost a few probes per key, not a subquery per job. The
/// search of a key's jobs is a scalar subquery, not `EXISTS`, which
/// MariaDB would flatten into a semi-join that reads every job of the key
/// before the key's test.
/// The walk of a kind of keys stops at the greatest key, found by a probe
/// from the index's other end: MariaDB searches for the key after one by
/// the queue and state alone, past the entries of the keys before it, so a
/// queue with a single key costs it no search at all.
/// Binds: queue (three times: `lk`), queue (three times: `rk`), then per kind of key
/// queue (the greatest limit) and queue (twice: [`READY`]): the queue
/// [`LIMITED_READY_BINDS`] times.
fn limited_ready() -> String {
    let keys = |column: &str| {
        format!(
            "SELECT (SELECT x.{column} FROM {{jobs}} x WHERE x.queue = ? AND x.state = 0 \
             AND x.{column} IS NOT NULL ORDER BY x.{column} LIMIT 1){{dual}} UNION ALL \
             SELECT (SELECT x.{column} FROM {{jobs}} x WHERE x.queue = ? \
             AND x.state = 0 AND x.{column} > k.k ORDER BY x.{column} LIMIT 1) \
             FROM {{k}} k WHERE k.k < (SELECT x.{column} FROM {{jobs}} x WHERE x.queue = ? \
             AND x.state = 0 AND x.{column} IS NOT NULL ORDER BY x.{column} DESC LIMIT 1)"
        )
    };
    format!(
        "WITH RECURSIVE lk(k) AS ({lk}), rk(k) AS ({rk}) \
         SELECT CAST((SELECT COUNT(*) FROM (SELECT 1 AS one FROM lk WHERE lk.k IS NOT NULL \
         AND (SELECT COUNT(*) FROM {{running}} WHERE r.limit_key = lk.k AND r.state = 1) \
         < (SELECT m.limit_max FROM {{jobs}} m WHERE m.queue = ? AND m.state = 0 \
         AND m.limit_key = lk.k ORDER BY m.limit_max DESC LIMIT 1) \
         AND (SELECT 1 FROM {{jobs}} j WHERE {READY} AND j.limit_key = lk.k{ROOM}{TURN} \
         LIMIT 1) IS NOT NULL LIMIT 1) a) \
         + (SELECT COUNT(*) FROM (SELECT 1 AS one FROM rk WHERE rk.k IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM {{rates}} t WHERE t.rate_key = rk.k \
         AND t.tat - (SELECT m.rate_per_us FROM {{jobs}} m WHERE m.queue = ? \
         AND m.state = 0 AND m.rate_key = rk.k ORDER BY m.rate_per_us DESC LIMIT 1) \
         {{div}} 10 > {{now}}) \
         AND (SELECT 1 FROM {{jobs}} j WHERE {READY} AND j.rate_key = rk.k{ROOM}{TURN} \
         LIMIT 1) IS NOT NULL LIMIT 1) b) AS {{bigint}}) AS n",
        lk = keys("limit_key").replace("{k}", "lk"),
        rk = keys("rate_key").replace("{k}", "rk"),
    )
}

/// MySQL: how many steps of [`limit_keys`] the claim walks at most, one key
/// of each kind a step; a queue with more pending keys of a kind is looked
/// at by [`limited_ready`] instead.
pub(crate) const LIMIT_KEYS_WALKED: usize = 16;

/// MySQL: a bound above every key for [`limit_keys`]' first step: longer
/// than the longest key (512 bytes), each byte the greatest.
pub(crate) const ABOVE_EVERY_KEY: [u8; 513] = [0xff; 513];

/// MySQL: one step of a walk down the distinct keys of a queue's pending
/// limited jobs: the greatest concurrency key (`kind` 0) below a bound and
/// the greatest rate key (`kind` 1) below another, each with whether it is
/// `open` and whether there are `more` keys of its kind below it. A
/// concurrency key is open while its running jobs are fewer than the
/// greatest `limit_max` of its pending ones, a rate key while its `tat` is
/// no further ahead than any of its pending jobs' tolerance (below a tenth
/// of the period, [`TOLERANCE`]): [`limited_ready`]'s tests of a key,
/// without its search of the key's jobs, which the claim runs for open
/// keys only ([`key_ready`]).
///
/// [`limited_ready`] costs MariaDB, which optimizes a statement again at
/// each execution, prepared or not, milliseconds to optimize its
/// subqueries, where its execution touches a handful of index entries:
/// more than the claim of free jobs itself. This statement has a few, each
/// a probe of `jobs_limit_keys` or `jobs_rate_keys` that reads one entry:
/// a key with its greatest limit is the first entry below the bound walking
/// the index down, and there are more keys below it while it is greater
/// than the least key, the first entry walking up past the jobs without
/// one (NULL sorts first). A `GROUP BY` of the keys (a loose index scan)
/// would read as little, but MariaDB takes it only when its statistics
/// say that keys have many jobs, which those of a new table do not. The
/// indexes are forced so that MariaDB weighs no others. Binds: queue
/// (twice), the bound, queue (twice), the bound.
fn limit_keys() -> String {
    let kind = |column: &str, max: &str, index: &str| {
        let keys = format!(
            "FROM {{jobs}} x FORCE INDEX ({{jobs}}_{index}) WHERE x.queue = ? AND x.state = 0"
        );
        (
            format!(
                "CAST(k.k > (SELECT x.{column} {keys} AND x.{column} IS NOT NULL \
                 ORDER BY x.{column} LIMIT 1) AS SIGNED)"
            ),
            format!(
                "(SELECT x.{column} AS k, x.{max} AS m {keys} AND x.{column} < ? \
                 ORDER BY x.{column} DESC, x.{max} DESC LIMIT 1) k"
            ),
        )
    };
    let (limit_more, limit) = kind("limit_key", "limit_max", "limit_keys");
    let (rate_more, rate) = kind("rate_key", "rate_per_us", "rate_keys");
    format!(
        "SELECT CAST(0 AS SIGNED) AS kind, k.k, CAST((SELECT COUNT(*) FROM {{running}} \
         WHERE r.limit_key = k.k AND r.state = 1) < k.m AS SIGNED) AS open, \
         {limit_more} AS more FROM {limit} UNION ALL \
         SELECT 1, k.k, CAST(t.tat IS NULL OR t.tat - k.m {{div}} 10 <= {{now}} AS SIGNED), \
         {rate_more} FROM {rate} LEFT JOIN {{rates}} t ON t.rate_key = k.k"
    )
}

/// MySQL: whether a queue has a ready job of one concurrency key
/// (`column` `limit_key`) or rate key (`rate_key`) that [`ROOM`] and
/// [`TURN`] let start: [`limited_ready`]'s search of one open key's jobs,
/// found through `jobs_limit_keys` or `jobs_rate_keys`. Binds: queue
/// (twice: [`READY`]), key.
fn key_ready(column: &str) -> String {
    format!(
        "SELECT COUNT(*) AS n FROM (SELECT j.id FROM {{jobs}} j WHERE {READY} \
         AND j.{column} = ?{ROOM}{TURN} LIMIT 1) r"
    )
}

/// How far ahead of its key's `tat` a job `j` with a rate limit may start,
/// in µs: [`RateLimit::tolerance`](outband::RateLimit::tolerance), `interval
/// × (burst − 1)`, with the interval in whole microseconds. Rendered before
/// `{div}`.
const TOLERANCE: &str = "(j.rate_per_us {div} j.rate_max) * ((j.rate_max + 9) {div} 10 - 1)";

/// A ready job `j` whose rate limit, if it has one, lets it start now: its
/// key never started, or the key's `tat` less the job's tolerance has come.
/// Not exact under concurrent claims; the claim of limited jobs reads the
/// `tat` again under the key's lock.
const TURN: &str = " AND (j.rate_key IS NULL OR NOT EXISTS (SELECT 1 FROM {rates} t \
    WHERE t.rate_key = j.rate_key AND t.tat - {tolerance} > {now}))";

/// A ready job `j` that a claim could start now: unlimited, or fewer than
/// its own `limit_max` jobs holding its key are running (counted through
/// `jobs_limit`). Not exact under concurrent claims; the claim of limited
/// jobs counts again under the key's lock.
const ROOM: &str = " AND (j.limit_key IS NULL OR (SELECT COUNT(*) FROM {running} \
    WHERE r.limit_key = j.limit_key AND r.state = 1) < j.limit_max)";

/// The ready limited jobs of a queue (with a concurrency limit, a rate
/// limit or both) that a claim may start, in claim order, with what the
/// claim's walk ([`crate::store::walk_limited`]) needs to decide: the running
/// jobs of the concurrency key, the rate key's `tat`, the clock. Jobs whose
/// key is full or whose turn has not come are left out, and so are those
/// beyond what their key lets start at once: `limit_max` less the running
/// ones, and a burst. `filter` narrows the keys to those the claim locked.
/// Binds: queue, queue, the filter's. Not rendered.
///
/// Exact only where no other claim of these keys commits meanwhile: SQLite
/// holds the write lock, PostgreSQL and MySQL hold the keys' locks and run
/// this after taking them, under READ COMMITTED, so that its snapshot holds
/// every claim of theirs that came before.
fn limited_candidates(filter: &str) -> String {
    format!(
        "SELECT w.id AS n, w.limit_key, CAST(w.limit_max AS {{bigint}}) AS limit_max, \
         CAST(w.running AS {{bigint}}) AS running, w.rate_key, \
         CAST(w.rate_max AS {{bigint}}) AS rate_max, w.rate_per_us, w.tat, {{now}} AS db_now \
         FROM (SELECT j.id, j.priority, j.limit_key, j.limit_max, j.rate_key, j.rate_max, \
         j.rate_per_us, t.tat, \
         (SELECT COUNT(*) FROM {{running}} WHERE r.limit_key = j.limit_key AND r.state = 1) \
         AS running, \
         ROW_NUMBER() OVER (PARTITION BY j.limit_key ORDER BY j.priority DESC, j.id) AS rn_limit, \
         ROW_NUMBER() OVER (PARTITION BY j.rate_key ORDER BY j.priority DESC, j.id) AS rn_rate \
         FROM {{jobs}} j LEFT JOIN {{rates}} t ON t.rate_key = j.rate_key \
         WHERE {READY} AND (j.limit_key IS NOT NULL OR j.rate_key IS NOT NULL) \
         AND (t.tat IS NULL OR t.tat - {{tolerance}} <= {{now}}){filter}) w \
         WHERE (w.limit_key IS NULL OR w.rn_limit + w.running <= w.limit_max) \
         AND (w.rate_key IS NULL OR w.rn_rate <= (w.rate_max + 9) {{div}} 10) \
         ORDER BY w.priority DESC, w.id"
    )
}

/// PostgreSQL: the first argument of the two-argument `pg_advisory_xact_lock`
/// that concurrency keys are locked under ("ol"), apart from the ordering
/// keys' [`KEY_LOCK_CLASS`].
pub(crate) const LIMIT_LOCK_CLASS: i32 = 0x6f6c;

/// What a claim sets on the rows it takes: a new attempt starts with no
/// progress. Binds: lease in µs.
const CLAIM_SET: &str = "state = 1, attempt = attempt + 1, token = token + 1, \
    started_at = {now}, deadline = {now} + ?, progress = NULL, progress_note = NULL";

/// Where a completion finds its job: still running under the lease's token.
/// Binds: id, token.
const LEASED: &str = "WHERE id = ? AND state = 1 AND token = ?";

/// `then` for a running job no one asked to cancel, `cancelled` for one
/// whose cancel was requested (`cancel_reason` set): the value of a column
/// when the attempt ends and would run the job again. Only `then` may hold
/// binds. On MySQL, which assigns in order and lets a later assignment see
/// an earlier one's new value, `cancel_reason = NULL` comes after every use.
fn unless_cancelled(then: &str, cancelled: &str) -> String {
    format!("CASE WHEN cancel_reason IS NULL THEN {then} ELSE {cancelled} END")
}

/// A row whose state code is none of the known ones (0 to 4, see
/// [`STATE_CODES`](crate::store::STATE_CODES)). The partial index
/// `jobs_unknown` (migration `0005_unknown_state`, redefined by
/// `0008_cancel` when 4 became `cancelled`) has this condition word for
/// word, which SQLite needs to use it; MySQL reads the range from
/// `jobs_lease` (state, deadline).
pub(crate) const UNKNOWN_STATE: &str = "state < 0 OR state > 4";

/// The rows of an unknown state code, found by the recovery step. A read
/// that locks nothing: on MySQL, an `UPDATE … WHERE` [`UNKNOWN_STATE`] would
/// lock the index entry where its range ends, a pending job's, and deadlock
/// with the claim that moves that job. Not rendered.
pub(crate) fn unknown_states() -> String {
    format!("SELECT id AS n FROM {{jobs}} WHERE {UNKNOWN_STATE}")
}

/// The recovery step's update of one row of an unknown state code (binds:
/// id) to `dead`, its reason naming the row's code and the known ones. Not
/// rendered.
pub(crate) fn recover_unknown(dialect: Dialect) -> String {
    let (head, tail) = crate::store::unknown_state_reason();
    // constant text of this crate, never a value from outside
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let head = literal(&format!("{}{head}", crate::store::MALFORMED));
    let tail = literal(&format!("{tail}; set to dead"));
    let reason = match dialect {
        Dialect::Sqlite => format!("{head} || state || {tail}"),
        Dialect::Postgres | Dialect::Mysql => format!("CONCAT({head}, state, {tail})"),
    };
    // MySQL assigns in order, and a later assignment sees the new value of
    // an earlier column: the reason is made before `state` changes
    format!(
        "UPDATE {{jobs}} SET last_error = {reason}, state = 3, finished_at = {{now}}, \
         deadline = NULL WHERE id = ? AND ({UNKNOWN_STATE})"
    )
}

/// The reason an expired lease leaves on its job, requeued or dead, as an
/// SQL expression of the row's `attempt` and `max_attempts`: the text of
/// [`outband::backend::fate::lease_expired`], built from its parts.
fn lease_expired(dialect: Dialect) -> String {
    let (head, of) = outband::backend::fate::LEASE_EXPIRED_PARTS;
    // constant text of outband, never a value from outside
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let (head, of) = (literal(head), literal(of));
    match dialect {
        Dialect::Sqlite => format!("{head} || attempt || {of} || max_attempts"),
        Dialect::Postgres | Dialect::Mysql => {
            format!("CONCAT({head}, attempt, {of}, max_attempts)")
        }
    }
}

/// PostgreSQL: the channel an enqueue, and any change that may make a job
/// ready, notifies (migration `0001_jobs`), which idle consumers listen on.
#[cfg(feature = "postgres")]
pub(crate) fn ready_channel(prefix: &str) -> String {
    format!("{prefix}jobs")
}

/// PostgreSQL: the channel the end of an awaited job notifies, with the
/// job's id (migration `0009_awaited`).
#[cfg(feature = "postgres")]
pub(crate) fn finished_channel(prefix: &str) -> String {
    format!("{prefix}finished")
}

/// PostgreSQL: the channel a cancel request for a running job notifies,
/// with the job's id, which processors' cancel feeds listen on.
pub(crate) fn cancels_channel(prefix: &str) -> String {
    format!("{prefix}cancels")
}

/// PostgreSQL: the first argument of the two-argument `pg_advisory_xact_lock`
/// that ordering keys are locked under ("ob"), apart from one-argument locks.
pub(crate) const KEY_LOCK_CLASS: i32 = 0x6f62;

/// PostgreSQL: the condition that makes a statement's transaction commit
/// with `synchronous_commit` on: the setting is local to the transaction,
/// and the server reads it when the transaction commits.
const SYNC_ON: &str = "set_config('synchronous_commit', 'on', true) IS NOT NULL";

/// PostgreSQL: the call that makes an insert of jobs notify the channel
/// idle consumers listen on (`<prefix>jobs`, named as the table) when its
/// transaction commits; the insert's `WHERE` makes it. The statement
/// notifies itself: a statement trigger on the insert would do the same for
/// more work at every enqueue.
const NOTIFY_READY: &str = "pg_notify('{jobs}', '')";

/// What a queue's run times are read as, over done jobs (`duration_us`,
/// `finished_at`): how many, their mean, how many ended within the window
/// (bound, in µs), and the µs since the oldest of them ended.
const RUN_TIMES: &str = "COUNT(duration_us) AS n, CAST(AVG(duration_us) AS {bigint}) AS mean, \
    COUNT(CASE WHEN finished_at >= {now} - ? THEN 1 END) AS recent, \
    {now} - MIN(finished_at) AS span";

/// The columns an insert of jobs writes.
const INSERT_COLUMNS: &str = "command, args, queue, ordering_key, priority, max_attempts, \
    attempt, state, token, run_at, enqueued_at, timeout_ms, limit_key, limit_max, \
    rate_key, rate_max, rate_per_us";

/// PostgreSQL: the insert of a batch as arrays, with `filter` (the
/// conditions of its `WHERE`, after [`NOTIFY_READY`]) before its `ORDER BY`.
/// The notification is a subquery, which the server runs once per
/// statement: called in the `WHERE` itself, it would run once per row.
/// Not rendered.
fn insert_unnest(filter: &str) -> String {
    format!(
        "INSERT INTO {{jobs}} ({INSERT_COLUMNS}) \
         SELECT c, a, q, k, p, m, 0, 0, 0, COALESCE(r, {{now}} + d), {{now}}, t, lk, lm, rk, rm, rp \
         FROM UNNEST(?::text[], ?::bytea[], ?::text[], ?::text[], ?::int[], ?::int[], \
         ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], \
         ?::bigint[]) WITH ORDINALITY AS u(c, a, q, k, p, m, r, d, t, lk, lm, rk, rm, rp, o) \
         WHERE (SELECT {NOTIFY_READY}) IS NOT NULL{filter} ORDER BY o RETURNING id AS n"
    )
}

/// PostgreSQL: the insert of one job, with `filter` (the conditions of its
/// `WHERE`, after [`NOTIFY_READY`]). Not rendered.
fn insert_one(filter: &str) -> String {
    format!(
        "INSERT INTO {{jobs}} ({INSERT_COLUMNS}) \
         SELECT ?, ?, ?, ?, ?, ?, 0, 0, 0, COALESCE(?, {{now}} + ?), {{now}}, ?, ?, ?, ?, ?, ? \
         WHERE {NOTIFY_READY} IS NOT NULL{filter} RETURNING id AS n"
    )
}

/// The columns of both `{jobs}` and `{done}`, in table order.
pub(crate) const COLUMNS: &str = "id, command, args, queue, ordering_key, priority, attempt, \
    max_attempts, state, token, run_at, enqueued_at, started_at, finished_at, deadline, \
    duration_us, last_error, result, progress, progress_note, timeout_ms";

/// The limit columns of `{jobs}`, which `{done}` has not, as a read of a
/// job gives them ([`Row`](crate::store::Row)).
pub(crate) const LIMITS: &str = "limit_key, limit_max, rate_key, rate_max, rate_per_us";

/// [`LIMITS`] in a read of `{done}`: a done job holds no limit.
const NO_LIMITS: &str = "NULL AS limit_key, NULL AS limit_max, NULL AS rate_key, \
    NULL AS rate_max, NULL AS rate_per_us";

/// The columns a read of a job from `table` gives: [`COLUMNS`], then
/// [`LIMITS`] (NULL from `{done}`).
fn read_columns(table: &str) -> String {
    let limits = if table == "{done}" { NO_LIMITS } else { LIMITS };
    format!("{COLUMNS}, {limits}")
}

/// Which of the rows a listing examines its page holds: those of a queue
/// (binds: queue), in a state (binds: the state's code, twice: a code outband
/// does not know lists as `dead`, as [`job`](outband::BaseQueue::job) reads
/// it), of a command unless it is NULL (binds: command, twice). Not rendered.
fn listed() -> String {
    format!(
        "queue = ? AND (state = ? OR (? = 3 AND ({UNKNOWN_STATE}))) \
         AND (? IS NULL OR command = ?)"
    )
}

/// The floor of a page of a listing of `table`: the id of the
/// [`JobQuery::SCAN`](outband::JobQuery::SCAN)-th row below the page's
/// start, walking the primary key down; no row when fewer remain. Binds:
/// start, `SCAN - 1`. Not rendered.
pub(crate) fn list_floor(table: &str) -> String {
    format!("SELECT id AS n FROM {table} WHERE id < ? ORDER BY id DESC LIMIT 1 OFFSET ?")
}

/// A page of a listing of `table`: the rows [`listed`] that lie between the
/// page's start (excluded) and its floor, newest first, found by walking the
/// primary key down between the two. That walk is what bounds the rows a
/// page examines, so each dialect is kept from the indexes that lead with
/// `queue` (`done_queue`, `jobs_state`, …), which a
/// planner may prefer and which would read the whole queue and sort it.
/// PostgreSQL, which takes no hints, filters the walk outside a subquery
/// that it plans on its own (`OFFSET 0`). Binds: start, floor, then those of
/// [`listed`], then the limit. Not rendered.
pub(crate) fn list_page(dialect: Dialect, table: &str) -> String {
    let between = "id < ? AND id >= ?";
    let (listed, order) = (listed(), "ORDER BY id DESC LIMIT ?");
    let columns = read_columns(table);
    match dialect {
        Dialect::Postgres => format!(
            "SELECT {columns} FROM (SELECT * FROM {table} WHERE {between} \
             ORDER BY id DESC OFFSET 0) w WHERE {listed} {order}"
        ),
        Dialect::Sqlite => format!(
            "SELECT {columns} FROM {table} NOT INDEXED WHERE {between} AND {listed} {order}"
        ),
        Dialect::Mysql => format!(
            "SELECT {columns} FROM {table} FORCE INDEX (PRIMARY) \
             WHERE {between} AND {listed} {order}"
        ),
    }
}

/// A queue's jobs by state, a row per state: `(s, n)`. Binds: the queue,
/// four times.
///
/// Each count reads only its own stretch of an index that leads with
/// `queue`, without a look at the rows. The pending jobs, most of a busy
/// queue, are counted apart from the others, so that counting the few
/// running, dead and cancelled ones never walks past them: `state > 0` and
/// `state < 0` are two ranges of the index where `state <> 0` would be a
/// filter over the whole queue. PostgreSQL counts the pending jobs through
/// `jobs_ready`, whose condition the `run_at IS NOT NULL` (always true)
/// satisfies, and the others through `jobs_state`, which holds no pending
/// job. SQLite and MySQL count them through `jobs_state` (queue, state, …),
/// which holds every job: the same condition there would make them read
/// each row for its `run_at`.
fn counts(dialect: Dialect) -> String {
    let pending = match dialect {
        Dialect::Postgres => " AND run_at IS NOT NULL",
        Dialect::Sqlite | Dialect::Mysql => "",
    };
    format!(
        "SELECT 0 AS s, COUNT(*) AS n FROM {{jobs}} WHERE queue = ? AND state = 0{pending} \
         UNION ALL SELECT state AS s, COUNT(*) AS n FROM {{jobs}} \
         WHERE queue = ? AND state > 0 GROUP BY state \
         UNION ALL SELECT state AS s, COUNT(*) AS n FROM {{jobs}} \
         WHERE queue = ? AND state < 0 GROUP BY state \
         UNION ALL SELECT 2 AS s, COUNT(*) AS n FROM {{done}} WHERE queue = ?"
    )
}

/// [`counts`], each state counted only up to a bound, for
/// [`estimate_stats`](outband::BaseQueue::estimate_stats): a row per state,
/// `(s, n)`, `n` at most the bound. Binds: the queue and the bound, for
/// pending, running, dead, cancelled and done in turn, then the queue once
/// more.
///
/// Each count reads at most the bound's entries of the index [`counts`]
/// reads. The rows of a state code outband does not know, which the next
/// recovery step makes dead, are few and counted in full, as two ranges of
/// `jobs_state` (PostgreSQL: `jobs_unknown`).
fn counts_up_to(dialect: Dialect) -> String {
    let pending = match dialect {
        Dialect::Postgres => " AND run_at IS NOT NULL",
        Dialect::Sqlite | Dialect::Mysql => "",
    };
    let up_to = |s: i32, table: &str, condition: &str| {
        format!(
            "SELECT {s} AS s, COUNT(*) AS n FROM \
             (SELECT 1 AS one FROM {table} WHERE queue = ?{condition} LIMIT ?) c{s}"
        )
    };
    [
        up_to(0, "{jobs}", &format!(" AND state = 0{pending}")),
        up_to(1, "{jobs}", " AND state = 1"),
        up_to(3, "{jobs}", " AND state = 3"),
        up_to(4, "{jobs}", " AND state = 4"),
        up_to(2, "{done}", ""),
        "SELECT state AS s, COUNT(*) AS n FROM {jobs} \
         WHERE queue = ? AND (state < 0 OR state > 4) GROUP BY state"
            .to_owned(),
    ]
    .join(" UNION ALL ")
}

/// The planner's estimate of a queue's jobs in one state, by `EXPLAIN` of
/// the count [`counts`] makes: PostgreSQL gives it as `rows=` in the plan's
/// first line, MySQL in the column `rows`. Binds: the queue, which each
/// database plans with as it would with the value written out, so the
/// estimate is the queue's own (PostgreSQL: from the column statistics of
/// `queue` and `state`; MySQL: from a dive into the index).
fn estimate(dialect: Dialect, state: JobState) -> Option<String> {
    let pending = match dialect {
        Dialect::Postgres => " AND run_at IS NOT NULL",
        Dialect::Sqlite | Dialect::Mysql => "",
    };
    let code =
        |code: i32| format!("EXPLAIN SELECT 1 FROM {{jobs}} WHERE queue = ? AND state = {code}");
    match dialect {
        Dialect::Sqlite => None,
        Dialect::Postgres | Dialect::Mysql => Some(match state {
            JobState::Pending => format!("{}{pending}", code(0)),
            JobState::Running => code(1),
            JobState::Dead => code(3),
            JobState::Cancelled => code(4),
            JobState::Done => "EXPLAIN SELECT 1 FROM {done} WHERE queue = ?".to_owned(),
            _ => return None,
        }),
    }
}

/// The names of the queues holding a job, pending or finished, sorted: the
/// distinct values of `queue` in `{jobs}` and `{done}`, found by a loose
/// index scan, one probe of an index that leads with `queue` per distinct
/// queue, however many jobs each holds.
///
/// SQLite and PostgreSQL walk a recursive CTE: the least name, then the
/// least name above the last one found, until there is none, each a
/// `MIN(queue)` that reads one entry of the index. On PostgreSQL, no index
/// of `{jobs}` holds every row: the walk is done twice, through
/// `jobs_ready` (the pending jobs, its condition word for word) and through
/// `jobs_state` (the others). On `{done}` it walks `done_queue`. MySQL
/// (MariaDB included) runs the same CTE as a scan of the whole index per
/// step, but skips through an index from one value of its first column to
/// the next on its own for a `SELECT DISTINCT` ("Using index for
/// group-by"): it gets that.
fn queues(dialect: Dialect) -> String {
    let walk = |cte: &str, table: &str, condition: &str| {
        let and = if condition.is_empty() {
            String::new()
        } else {
            format!(" AND {condition}")
        };
        let first = if condition.is_empty() {
            String::new()
        } else {
            format!(" WHERE {condition}")
        };
        format!(
            "{cte}(name) AS (SELECT (SELECT MIN(queue) FROM {table}{first}) \
             UNION ALL SELECT (SELECT MIN(queue) FROM {table} WHERE queue > {cte}.name{and}) \
             FROM {cte} WHERE {cte}.name IS NOT NULL)"
        )
    };
    let found = |ctes: &[&str]| {
        ctes.iter()
            .map(|cte| format!("SELECT name FROM {cte} WHERE name IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" UNION ")
    };
    match dialect {
        Dialect::Postgres => format!(
            "WITH RECURSIVE {}, {}, {} {} ORDER BY name",
            walk("p", "{jobs}", "state = 0 AND run_at IS NOT NULL"),
            walk("o", "{jobs}", "state <> 0"),
            walk("d", "{done}", ""),
            found(&["p", "o", "d"]),
        ),
        Dialect::Sqlite => format!(
            "WITH RECURSIVE {}, {} {} ORDER BY name",
            walk("j", "{jobs}", ""),
            walk("d", "{done}", ""),
            found(&["j", "d"]),
        ),
        Dialect::Mysql => "SELECT DISTINCT queue AS name FROM {jobs} \
             UNION SELECT DISTINCT queue AS name FROM {done} ORDER BY name"
            .to_owned(),
    }
}

/// Every statement, rendered for one dialect and prefix.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) dialect: Dialect,
    /// The start of a multi-row insert, its `?` not numbered; one
    /// `insert_row` per row follows.
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    pub(crate) insert_head: String,
    /// One row of an insert, its `?` not numbered. Binds: command, args, queue, key, priority,
    /// max_attempts, run_at (absolute, nullable), delay (µs), timeout (ms, nullable),
    /// concurrency key and max, rate key, max and period in µs (nullable).
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    pub(crate) insert_row: String,
    /// PostgreSQL: the whole batch as arrays, in one statement, prepared
    /// once whatever the batch size, which notifies idle consumers
    /// ([`NOTIFY_READY`]). Binds: one array per column of `insert_row`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) insert_unnest: Stmt,
    /// PostgreSQL: [`insert_unnest`](Self::insert_unnest) whose transaction
    /// commits with `synchronous_commit` on, whatever the session's setting
    /// ([`SYNC_ON`] in its `WHERE`): run alone, one durable autocommit
    /// statement; in a transaction, that transaction's commit waits for the
    /// WAL flush. Binds: as `insert_unnest`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) insert_unnest_durable: Stmt,
    /// PostgreSQL: one job, its values bound one by one, where arrays would
    /// cost encoding on both sides. Binds: as `insert_row`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) insert_one: Stmt,
    /// PostgreSQL: [`insert_one`](Self::insert_one), durable as
    /// [`insert_unnest_durable`](Self::insert_unnest_durable) is.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) insert_one_durable: Stmt,
    /// PostgreSQL: locks the ordering keys of a batch until its transaction
    /// ends. Binds: the keys, each `<queue length>:<queue>:<key>`, as an array.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) lock_keys: Stmt,
    /// MySQL: the start of the upsert that locks ordering keys for an
    /// enqueue's transaction; one `(?)` per key hash follows.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) lock_keys_head: String,
    /// What follows the rows (PostgreSQL and SQLite: `RETURNING id`).
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    pub(crate) insert_tail: &'static str,
    /// SQLite and PostgreSQL: the whole claim. Binds: lease, queue (twice:
    /// [`READY`]), limit.
    pub(crate) claim: Stmt,
    /// PostgreSQL: jobs completed and the next ones claimed, in one
    /// statement (no `BEGIN`/`COMMIT` round trips). Binds: ids, tokens,
    /// durations (arrays), results (an array of nullable bytes), the ids again;
    /// then queue (four times: whether limited jobs are pending), lease,
    /// queue (twice) and limit for the claim. Returns the claimed rows with
    /// `done` and `limited` false, then one row per job moved to `{done}`
    /// (only its id meaningful) with `done` true, then, when the queue has
    /// pending limited jobs, a marker row with `limited` true: the claim
    /// took nothing, and a transaction claims next.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) done_and_claim: Stmt,
    /// PostgreSQL: the claim as one statement, of unlimited jobs while the
    /// queue has no limited job that may start ([`limited_ready`]); else it
    /// takes nothing and returns a marker row, `limited` true, for the
    /// claim to run its transaction. Binds: queue
    /// ([`LIMITED_READY_BINDS`] times), lease, queue (twice), limit.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) claim_marked: Stmt,
    /// MySQL: the locking select of the claim, with the clock. Binds: queue
    /// (twice), limit.
    pub(crate) claim_select: Stmt,
    /// MySQL: the update of the claim, followed by an id list. Binds:
    /// started_at, deadline.
    pub(crate) claim_update_head: String,
    /// Whether a queue has a job the claim would take now: never while it
    /// is paused. Binds: queue (twice).
    pub(crate) has_ready: Stmt,
    /// Whether a queue has a ready limited job that may start now, as far
    /// as a read without locks can tell: one with a concurrency limit whose
    /// key has a free slot, or one with a rate limit whose turn has come,
    /// decided per key ([`limited_ready`]). The claim runs its step for
    /// limited jobs only then. Binds: queue ([`LIMITED_READY_BINDS`] times).
    pub(crate) limited_ready: Stmt,
    /// MySQL: a step of the walk down the keys of a queue's pending limited
    /// jobs, each with whether it is open ([`limit_keys`]). Binds: queue
    /// (twice), a bound, queue (twice), a bound.
    pub(crate) limit_keys: Stmt,
    /// MySQL: whether a queue has a ready job of a concurrency key that
    /// may start ([`key_ready`]). Binds: queue (twice), key.
    pub(crate) limit_key_ready: Stmt,
    /// MySQL: whether a queue has a ready job of a rate key that may start
    /// ([`key_ready`]). Binds: queue (twice), key.
    pub(crate) rate_key_ready: Stmt,
    /// How long, in µs, until the turn of the first ready rate-limited job
    /// of a queue whose turn has not come; NULL when there is none. Binds:
    /// queue (twice).
    pub(crate) next_turn: Stmt,
    /// PostgreSQL: locks, until the transaction ends, the concurrency and
    /// rate keys (their `hashtext`, under [`LIMIT_LOCK_CLASS`], in ascending
    /// order) of the ready limited jobs of a queue, and returns the hashes.
    /// Binds: queue (four times).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) lock_limits: Stmt,
    /// MySQL: the hashes (`CRC32`) of the concurrency and rate keys of the
    /// ready limited jobs of a queue, whose rows of `{limit_locks}` the
    /// claim then locks. Binds: queue (four times).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) limit_hashes: Stmt,
    /// MySQL: the start of the upsert that locks rows of `{limit_locks}`;
    /// one `(?)` per hash follows.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) limit_locks_head: String,
    /// SQLite and PostgreSQL: [`limited_candidates`], in the transaction
    /// that holds the keys' locks (SQLite: the write lock). Binds: queue
    /// (twice), PostgreSQL the locked hashes (an array, twice).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) limited_candidates: Stmt,
    /// MySQL: [`limited_candidates`] with `{hashes}` where each list of
    /// locked hashes goes (twice). Binds: queue (twice), the hashes, twice.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) limited_candidates_mysql: String,
    /// PostgreSQL: claims the jobs of an id array still pending. Binds:
    /// lease, the ids.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) claim_ids: Stmt,
    /// SQLite: the claim of the jobs of an id list still pending; the list
    /// and `RETURNING *` follow. Binds: lease, the ids.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) claim_ids_head: String,
    /// MySQL: the rows of an id list still pending, with the clock, to lock
    /// and claim; the id list and `FOR UPDATE` follow.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) claim_select_ids_head: String,
    /// Sets a rate key's `tat`, inserting its row when missing. Binds: key,
    /// tat (µs).
    pub(crate) rate_upsert: Stmt,
    pub(crate) mark_malformed: Stmt,
    pub(crate) heartbeat: Stmt,
    /// A running job's lease deadline and the reason it was asked to
    /// cancel, if it was, after a heartbeat. Binds: id.
    pub(crate) select_lease: Stmt,
    /// Stores a running job's progress. Binds: fraction, note, id, token.
    pub(crate) progress: Stmt,
    /// Records a job done. SQLite and MySQL: an update of its row, which
    /// [`move_done_head`](Self::move_done_head) then moves to `{done}` in the same
    /// transaction; binds duration, result, id, token. PostgreSQL: the move
    /// itself, one statement; binds id, token, duration, result.
    pub(crate) done: Stmt,
    /// SQLite and MySQL: copies the `done` rows of an id list into `{done}`;
    /// the id list follows.
    pub(crate) move_done_head: String,
    /// SQLite and MySQL: deletes the `done` rows of an id list from `{jobs}`;
    /// the id list follows.
    pub(crate) delete_done_head: String,
    /// SQLite and MySQL: the start of one update that marks several jobs
    /// done; `CASE` lists of durations, results and tokens by id follow.
    pub(crate) done_many_head: String,
    /// SQLite and MySQL: which of an id list are marked done, waiting to be
    /// moved; the id list follows.
    pub(crate) marked_done_head: String,
    /// A retry, or `cancelled` for a job whose cancel was requested.
    /// Binds: delay, error, id, token.
    pub(crate) retry: Stmt,
    pub(crate) dead: Stmt,
    /// A release, or `cancelled` for a job whose cancel was requested.
    /// Binds: id, token.
    pub(crate) release: Stmt,
    /// Expired leases of jobs whose cancel was requested, to `cancelled`.
    pub(crate) recover_cancelled: Stmt,
    pub(crate) recover_dead: Stmt,
    pub(crate) recover_requeue: Stmt,
    /// The ids of the rows of an unknown state code.
    pub(crate) unknown_states: Stmt,
    /// One row of an unknown state code to `dead`, with the reason. Binds: id.
    pub(crate) recover_unknown: Stmt,
    pub(crate) len: Stmt,
    /// The pending jobs of a queue, to flush: their ids, locked for the
    /// rest of the transaction (SQLite: it holds the write lock), so that
    /// no claim takes one before it is deleted with its unique key.
    /// Binds: queue.
    pub(crate) flush_ids: Stmt,
    /// Deletes the pending jobs of an id list; the id list follows.
    pub(crate) flush_head: String,
    /// Deletes the unique keys of the jobs of an id list; the id list follows.
    pub(crate) unique_delete_head: String,
    pub(crate) counts: Stmt,
    /// [`RUN_TIMES`] of every done job of a queue. Binds: the throughput
    /// window, the queue.
    pub(crate) run_times: Stmt,
    pub(crate) run_time_at: Stmt,
    /// [`counts_up_to`].
    pub(crate) counts_up_to: Stmt,
    /// [`RUN_TIMES`] of the queue's last done jobs, at most a bound of
    /// them. Binds: the throughput window, the queue, the bound.
    pub(crate) recent_run_times: Stmt,
    /// `run_time_at` among the same jobs. Binds: the queue, the bound, the
    /// rank.
    pub(crate) recent_run_time_at: Stmt,
    /// Per state, in the order of [`JobState::ALL`], its [`estimate`];
    /// empty on SQLite, which has none.
    pub(crate) estimates: Vec<(JobState, Stmt)>,
    pub(crate) queues: Stmt,
    pub(crate) job: Stmt,
    /// Where a page of a listing of `{jobs}` stops ([`list_floor`]).
    /// Binds: start, `SCAN - 1`.
    pub(crate) list_floor: Stmt,
    /// A page of a listing of `{jobs}` ([`list_page`]). Binds: start,
    /// floor, queue, state code (twice), command (nullable, twice), limit.
    pub(crate) list: Stmt,
    /// [`list_floor`](Self::list_floor) in `{done}`.
    pub(crate) list_done_floor: Stmt,
    /// [`list`](Self::list) in `{done}`.
    pub(crate) list_done: Stmt,
    pub(crate) dead_jobs: Stmt,
    pub(crate) retry_dead: Stmt,
    pub(crate) delete_dead: Stmt,
    /// Deletes the unique key a job holds, once the job is deleted. Binds: id.
    pub(crate) unique_delete: Stmt,
    /// The state code of a job of `{jobs}`, its row locked for the rest of
    /// the transaction (SQLite: the transaction holds the write lock).
    /// Binds: id.
    pub(crate) cancel_lock: Stmt,
    /// A pending job to `cancelled`. Binds: reason, id.
    pub(crate) cancel_pending: Stmt,
    /// A running job's cancel request; a first request's reason stays.
    /// Binds: reason, id.
    pub(crate) cancel_running: Stmt,
    /// Whether a job is in `{done}`. Binds: id.
    pub(crate) cancel_done: Stmt,
    /// PostgreSQL: tells the processors' cancel feeds, with the commit,
    /// that a running job was asked to cancel. Binds: id, as text.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) cancel_pushed: Stmt,
    /// PostgreSQL: marks a pending or running job awaited, so that its end
    /// notifies [`finished_channel`], and reads its state; no row when the
    /// job is no longer in `{jobs}` (done, or unknown). A job marked
    /// already, or ended, is only read, so that waiting again writes
    /// nothing. Binds: id, id.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) await_end: Stmt,
    /// Done jobs that finished at or before a time. Binds: the time in µs.
    pub(crate) purge: Stmt,
    /// The unique keys of the jobs [`purge`](Self::purge) deletes, deleted
    /// first: done is final, so the two see the same jobs. Binds: as `purge`.
    pub(crate) purge_unique: Stmt,
    /// Cancelled jobs that finished at or before a time. Binds: the time in µs.
    pub(crate) purge_cancelled: Stmt,
    /// The unique keys of the jobs [`purge_cancelled`](Self::purge_cancelled)
    /// deletes, deleted first. Binds: as `purge_cancelled`.
    pub(crate) purge_cancelled_unique: Stmt,
    /// Deletes the rows of `{rates}` whose `tat` has passed: a key's row
    /// then admits as no row does (`max(tat, now) + interval`), and a claim
    /// that read it writes its new `tat` back, inserting the row again.
    pub(crate) purge_rates: Stmt,
    /// Locks a unique key's row until the transaction ends, creating it
    /// (with job 0) when it is missing, so that two enqueues of a key wait
    /// for each other; PostgreSQL and SQLite return its job, MySQL reads it
    /// with [`unique_read`](Self::unique_read). Binds: key.
    pub(crate) unique_lock: Stmt,
    /// MySQL: the job of a unique key's row, which the transaction locked.
    /// Binds: key.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) unique_read: Stmt,
    /// The state and finish time of the job holding a unique key, from
    /// `{jobs}` or `{done}`, with the database's clock; no row when it is
    /// gone. Binds: id, id.
    pub(crate) unique_holder: Stmt,
    /// Gives a unique key to the job just stored. Binds: id, key.
    pub(crate) unique_take: Stmt,
    /// Pauses a queue: inserts its row in `{paused}`, changing nothing when
    /// it is there (MySQL: fails on the duplicate key instead, since its
    /// `INSERT IGNORE` would also cut a name too long for the column and
    /// pause another queue). PostgreSQL commits it durably ([`SYNC_ON`]).
    /// Binds: queue.
    pub(crate) pause: Stmt,
    /// Resumes a queue: deletes its row from `{paused}` (PostgreSQL: a
    /// trigger notifies idle consumers, and the commit is durable). Binds:
    /// queue.
    pub(crate) resume: Stmt,
    /// The names of the paused queues, in no order.
    pub(crate) paused: Stmt,
    /// Whether a queue is paused (a count of 0 or 1). Binds: queue.
    pub(crate) is_paused: Stmt,
    /// Registers a consumer, or refreshes its row: seen now, alive until
    /// `ttl` µs later, both on the database's clock. Binds: id, info, ttl.
    pub(crate) consumer_register: Stmt,
    /// Deletes a consumer's row. Binds: id.
    pub(crate) consumer_unregister: Stmt,
    /// Deletes the rows of consumers gone for longer than a period (µs).
    /// Binds: period.
    pub(crate) consumers_forget: Stmt,
    /// Every consumer's row, with the database's clock.
    pub(crate) consumers: Stmt,
    pub(crate) claim_tick: Stmt,
    /// The latest claimed tick of a periodic command, through the primary
    /// key. Binds: name.
    pub(crate) last_tick: Stmt,
    pub(crate) now: Stmt,
}

impl Statements {
    pub(crate) fn new(dialect: Dialect, prefix: &str) -> Self {
        let q = |template: &str| Stmt::new(&dialect.render(prefix, template));
        let order = "ORDER BY j.priority DESC, j.id LIMIT ?";
        let unlimited = dialect.unlimited();
        let ready_order = format!("{READY}{unlimited} {order}");
        let u = |template: &str| dialect.render(prefix, template);
        // The ids come as an array, evaluated once, that the update finds
        // through the primary key. A join with the selected ids instead is
        // planned, in the generic plan of the prepared statement, as a hash
        // join over a scan of the whole table: 13 ms a claim with 20,000
        // rows, where this takes well under one. It returns the columns
        // `{done}` shares, which the moved rows of `done_and_claim` match.
        let pg_claim = |ready: &str| {
            format!(
                "UPDATE {{jobs}} t SET {set} WHERE t.id = ANY(ARRAY(\
                     SELECT j.id FROM {{jobs}} j WHERE {ready} {order} \
                     FOR UPDATE SKIP LOCKED)) RETURNING {COLUMNS}, {LIMITS}",
                set = CLAIM_SET
                    .replace("attempt + 1", "t.attempt + 1")
                    .replace("token + 1", "t.token + 1"),
            )
        };
        let claim = match dialect {
            Dialect::Postgres => u(&pg_claim(&format!("{READY}{unlimited}"))),
            _ => u(&format!(
                "UPDATE {{jobs}} SET {CLAIM_SET} WHERE id IN \
                 (SELECT j.id FROM {{jobs}} j WHERE {ready_order}) RETURNING *"
            )),
        };
        // The ids are a bind of their own so that the delete finds its rows
        // through the primary key (`id = ANY($n)`, planned once), and each
        // row's token, duration and result are picked out by its place in
        // that array. The claim runs in the same snapshot, where the deleted
        // jobs still look running: it reads which ones `d` deleted, so that
        // the next job of a finished one's ordering key is claimable at once.
        // The pending limited jobs of a queue, read through `jobs_limited`,
        // which SQLite's planner passes over for `jobs_state` (every
        // pending job of the queue) when it has no statistics; MySQL finds
        // its `limit_max IS NOT NULL` range in it.
        let limited = match dialect {
            Dialect::Sqlite => "{jobs} j INDEXED BY {jobs}_limited",
            Dialect::Postgres | Dialect::Mysql => "{jobs} j",
        };
        let rated = match dialect {
            Dialect::Sqlite => "{jobs} j INDEXED BY {jobs}_rated",
            Dialect::Postgres | Dialect::Mysql => "{jobs} j",
        };
        let limited_pending = format!(
            "SELECT CAST((SELECT COUNT(*) FROM (SELECT j.id FROM {limited} WHERE {READY} \
             AND j.limit_key IS NOT NULL AND j.limit_max IS NOT NULL LIMIT 1) a) \
             + (SELECT COUNT(*) FROM (SELECT j.id FROM {rated} WHERE {READY} \
             AND j.rate_key IS NOT NULL AND j.rate_max IS NOT NULL LIMIT 1) b) \
             AS {{bigint}}) AS n"
        );
        // PostgreSQL's one-statement claims take unlimited jobs only while
        // `l` finds no limited job to consider (a one-time filter: then
        // they read no job), and return a marker row when it finds some,
        // for the claim to run its transaction instead, limited jobs first.
        // So a queue without limited jobs claims in one round trip.
        let gate = "(SELECT l.n FROM l) = 0 AND ";
        let marker = "0, '', ''::bytea, '', NULL, 0, 0, 0, 2, 0, 0, 0, NULL, NULL, NULL, \
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";
        let claim_marked = format!(
            "WITH l AS ({limited_ready}), k AS ({claim}) \
             SELECT k.*, FALSE AS limited FROM k UNION ALL \
             SELECT {marker}, TRUE FROM l WHERE l.n > 0",
            limited_ready = limited_ready(),
            claim = pg_claim(&format!("{gate}{READY}{UNLIMITED}")),
        );
        let done_and_claim = format!(
            "WITH c AS (SELECT ?::bigint[] AS ids, ?::bigint[] AS tokens, \
                 ?::bigint[] AS durations, ?::bytea[] AS results), \
             d AS (DELETE FROM {{jobs}} j USING c WHERE j.id = ANY(?::bigint[]) \
                 AND j.state = 1 AND j.token = c.tokens[array_position(c.ids, j.id)] \
                 RETURNING j.*, c.durations[array_position(c.ids, j.id)] AS c_duration, \
                 c.results[array_position(c.ids, j.id)] AS c_result), \
             m AS (INSERT INTO {{done}} ({COLUMNS}) SELECT id, command, args, queue, \
                 ordering_key, priority, attempt, max_attempts, 2, token, run_at, \
                 enqueued_at, started_at, {{now}}, NULL, c_duration, last_error, c_result, \
                 progress, progress_note, timeout_ms FROM d RETURNING id), \
             l AS ({limited_pending}), k AS ({claim_after_done}) \
             SELECT k.*, FALSE AS done, FALSE AS limited FROM k UNION ALL \
             SELECT m.id, '', ''::bytea, '', NULL, 0, 0, 0, 2, 0, 0, 0, NULL, NULL, NULL, \
                 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, TRUE, FALSE \
                 FROM m UNION ALL SELECT {marker}, FALSE, TRUE FROM l WHERE l.n > 0",
            claim_after_done = pg_claim(&format!("{gate}{READY_AFTER_DONE}{UNLIMITED}")),
        );
        let insert_tail = match dialect {
            Dialect::Mysql => "",
            _ => " RETURNING id AS n",
        };
        let claim_tick = match dialect {
            Dialect::Postgres => {
                "INSERT INTO {ticks} (name, tick) VALUES (?, ?) ON CONFLICT DO NOTHING"
            }
            Dialect::Sqlite => "INSERT OR IGNORE INTO {ticks} (name, tick) VALUES (?, ?)",
            Dialect::Mysql => "INSERT IGNORE INTO {ticks} (name, tick) VALUES (?, ?)",
        };
        Self {
            dialect,
            insert_head: u(&format!("INSERT INTO {{jobs}} ({INSERT_COLUMNS}) VALUES ")),
            insert_row: dialect.render(
                prefix,
                "(?, ?, ?, ?, ?, ?, 0, 0, 0, COALESCE(?, {now} + ?), {now}, ?, ?, ?, ?, ?, ?)",
            ),
            insert_tail,
            lock_keys_head: u("INSERT INTO {keys} (h) VALUES "),
            insert_unnest: q(&insert_unnest("")),
            insert_unnest_durable: q(&insert_unnest(&format!(" AND {SYNC_ON}"))),
            insert_one: q(&insert_one("")),
            insert_one_durable: q(&insert_one(&format!(" AND {SYNC_ON}"))),
            lock_keys: Stmt::new(&format!(
                "SELECT pg_advisory_xact_lock({KEY_LOCK_CLASS}, h) FROM \
                 (SELECT DISTINCT hashtext(k) AS h FROM unnest(?::text[]) AS k ORDER BY h) AS keys"
            )),
            claim: Stmt::new(&claim),
            done_and_claim: Stmt::new(&u(&done_and_claim)),
            claim_marked: Stmt::new(&u(&claim_marked)),
            // MariaDB's statistics can lead it to `jobs_ready`, which walks
            // the limited jobs ahead of the free ones
            claim_select: q(&format!(
                "SELECT j.*, {{now}} AS db_now FROM {{jobs}} j FORCE INDEX ({{jobs}}_free) \
                 WHERE {ready_order} \
                 FOR UPDATE SKIP LOCKED"
            )),
            claim_update_head: u("UPDATE {jobs} SET state = 1, attempt = attempt + 1, \
                 token = token + 1, started_at = ?, deadline = ?, progress = NULL, \
                 progress_note = NULL WHERE id IN "),
            has_ready: q(&format!(
                "SELECT COUNT(*) AS n FROM (SELECT j.id FROM {{jobs}} j \
                 WHERE {READY}{ROOM}{TURN} LIMIT 1) r"
            )),
            limited_ready: q(&limited_ready()),
            limit_keys: q(&limit_keys()),
            limit_key_ready: q(&key_ready("limit_key")),
            rate_key_ready: q(&key_ready("rate_key")),
            next_turn: q(&format!(
                "SELECT CAST(MIN(t.tat - {{tolerance}}) - {{now}} AS {{bigint}}) AS n \
                 FROM {rated} JOIN {{rates}} t ON t.rate_key = j.rate_key WHERE {READY} \
                 AND j.rate_key IS NOT NULL AND j.rate_max IS NOT NULL \
                 AND t.tat - {{tolerance}} > {{now}}"
            )),
            lock_limits: q(&format!(
                "SELECT CAST(k.h AS BIGINT) AS n FROM (SELECT DISTINCT u.h FROM \
                 (SELECT hashtext(j.limit_key) AS h FROM {{jobs}} j \
                 WHERE {READY} AND j.limit_key IS NOT NULL UNION ALL \
                 SELECT hashtext(j.rate_key) AS h FROM {{jobs}} j \
                 WHERE {READY} AND j.rate_key IS NOT NULL) u ORDER BY u.h) k \
                 WHERE pg_advisory_xact_lock({LIMIT_LOCK_CLASS}, k.h) IS NOT NULL"
            )),
            limit_hashes: q(&format!(
                "SELECT CAST(CRC32(j.limit_key) AS SIGNED) AS n FROM {{jobs}} j \
                 WHERE {READY} AND j.limit_key IS NOT NULL UNION \
                 SELECT CAST(CRC32(j.rate_key) AS SIGNED) AS n FROM {{jobs}} j \
                 WHERE {READY} AND j.rate_key IS NOT NULL"
            )),
            limit_locks_head: u("INSERT INTO {limit_locks} (h) VALUES "),
            limited_candidates: q(&limited_candidates(match dialect {
                Dialect::Postgres => {
                    " AND (j.limit_key IS NULL OR hashtext(j.limit_key) = ANY(?::int[])) \
                     AND (j.rate_key IS NULL OR hashtext(j.rate_key) = ANY(?::int[]))"
                }
                _ => "",
            })),
            limited_candidates_mysql: u(&limited_candidates(
                " AND (j.limit_key IS NULL OR CRC32(j.limit_key) IN {hashes}) \
                 AND (j.rate_key IS NULL OR CRC32(j.rate_key) IN {hashes})",
            )),
            claim_ids: q(&format!(
                "UPDATE {{jobs}} t SET {set} WHERE t.id = ANY(?::bigint[]) \
                 AND t.state = 0 RETURNING {COLUMNS}, {LIMITS}",
                set = CLAIM_SET
                    .replace("attempt + 1", "t.attempt + 1")
                    .replace("token + 1", "t.token + 1"),
            )),
            claim_ids_head: u(&format!(
                "UPDATE {{jobs}} SET {CLAIM_SET} WHERE state = 0 AND id IN "
            )),
            claim_select_ids_head: u("SELECT j.*, {now} AS db_now FROM {jobs} j \
                 WHERE j.state = 0 AND j.id IN "),
            rate_upsert: q(match dialect {
                Dialect::Mysql => {
                    "INSERT INTO {rates} (rate_key, tat) VALUES (?, ?) \
                     ON DUPLICATE KEY UPDATE tat = VALUES(tat)"
                }
                _ => {
                    "INSERT INTO {rates} (rate_key, tat) VALUES (?, ?) \
                     ON CONFLICT (rate_key) DO UPDATE SET tat = excluded.tat"
                }
            }),
            mark_malformed: q("UPDATE {jobs} SET state = 3, finished_at = {now}, \
                 deadline = NULL, last_error = ?, cancel_reason = NULL WHERE id = ?"),
            heartbeat: q(&format!(
                "UPDATE {{jobs}} SET deadline = {{now}} + ? {LEASED}"
            )),
            select_lease: q("SELECT deadline AS n, cancel_reason FROM {jobs} WHERE id = ?"),
            progress: q(&format!(
                "UPDATE {{jobs}} SET progress = ?, progress_note = ? {LEASED}"
            )),
            done: match dialect {
                Dialect::Postgres => q(&format!(
                    "WITH d AS (DELETE FROM {{jobs}} {LEASED} RETURNING *) \
                     INSERT INTO {{done}} ({COLUMNS}) SELECT id, command, args, queue, \
                     ordering_key, priority, attempt, max_attempts, 2, token, run_at, \
                     enqueued_at, started_at, {{now}}, NULL, CAST(? AS BIGINT), last_error, \
                     CAST(? AS BYTEA), progress, progress_note, timeout_ms FROM d"
                )),
                _ => q(&format!(
                    "UPDATE {{jobs}} SET state = 2, finished_at = {{now}}, deadline = NULL, \
                     duration_us = ?, result = ? {LEASED}"
                )),
            },
            move_done_head: u(&format!(
                "INSERT INTO {{done}} ({COLUMNS}) SELECT {COLUMNS} FROM {{jobs}} \
                 WHERE state = 2 AND id IN "
            )),
            delete_done_head: u("DELETE FROM {jobs} WHERE state = 2 AND id IN "),
            done_many_head: u(
                "UPDATE {jobs} SET state = 2, finished_at = {now}, deadline = NULL, ",
            ),
            marked_done_head: u("SELECT id AS n FROM {jobs} WHERE state = 2 AND id IN "),
            // a job whose cancel was requested ends `cancelled`, with the
            // request's reason, where it would run again
            retry: q(&format!(
                "UPDATE {{jobs}} SET state = {state}, run_at = {run_at}, \
                 finished_at = {finished_at}, deadline = NULL, last_error = {error}, \
                 cancel_reason = NULL {LEASED}",
                state = unless_cancelled("0", "4"),
                run_at = unless_cancelled("{now} + ?", "run_at"),
                finished_at = unless_cancelled("finished_at", "{now}"),
                error = unless_cancelled("?", "cancel_reason"),
            )),
            dead: q(&format!(
                "UPDATE {{jobs}} SET state = 3, finished_at = {{now}}, deadline = NULL, \
                 last_error = ?, cancel_reason = NULL {LEASED}"
            )),
            release: q(&format!(
                "UPDATE {{jobs}} SET state = {state}, run_at = {run_at}, \
                 finished_at = {finished_at}, deadline = NULL, last_error = {error}, \
                 attempt = {attempt}, cancel_reason = NULL {LEASED}",
                state = unless_cancelled("0", "4"),
                run_at = unless_cancelled("{now}", "run_at"),
                finished_at = unless_cancelled("finished_at", "{now}"),
                error = unless_cancelled("last_error", "cancel_reason"),
                attempt = unless_cancelled(
                    "CASE WHEN attempt > 0 THEN attempt - 1 ELSE 0 END",
                    "attempt"
                ),
            )),
            // first, so that an expired lease of a job whose cancel was
            // requested ends `cancelled` whatever attempts it has left; the
            // other two leave such jobs alone, also when a request or the
            // lease's end comes between the statements
            recover_cancelled: q("UPDATE {jobs} SET state = 4, finished_at = {now}, \
                 deadline = NULL, last_error = cancel_reason, cancel_reason = NULL \
                 WHERE state = 1 AND deadline <= {now} AND cancel_reason IS NOT NULL"),
            recover_dead: q(&format!(
                "UPDATE {{jobs}} SET state = 3, finished_at = {{now}}, deadline = NULL, \
                 last_error = {reason} \
                 WHERE state = 1 AND deadline <= {{now}} AND attempt >= max_attempts \
                 AND cancel_reason IS NULL",
                reason = lease_expired(dialect),
            )),
            recover_requeue: q(&format!(
                "UPDATE {{jobs}} SET state = 0, run_at = {{now}}, deadline = NULL, \
                 last_error = {reason} \
                 WHERE state = 1 AND deadline <= {{now}} AND attempt < max_attempts \
                 AND cancel_reason IS NULL",
                reason = lease_expired(dialect),
            )),
            unknown_states: q(&unknown_states()),
            recover_unknown: q(&recover_unknown(dialect)),
            // Pending jobs are counted through `jobs_ready`, whose condition
            // the `run_at IS NOT NULL` (always true) satisfies; PostgreSQL's
            // `jobs_state` holds only the other states.
            len: q("SELECT COUNT(*) AS n FROM {jobs} \
                 WHERE queue = ? AND state = 0 AND run_at IS NOT NULL"),
            flush_ids: q(match dialect {
                Dialect::Sqlite => {
                    "SELECT id AS n FROM {jobs} WHERE queue = ? AND state = 0 AND run_at IS NOT NULL"
                }
                Dialect::Postgres | Dialect::Mysql => {
                    "SELECT id AS n FROM {jobs} WHERE queue = ? AND state = 0 \
                     AND run_at IS NOT NULL FOR UPDATE"
                }
            }),
            flush_head: u("DELETE FROM {jobs} WHERE state = 0 AND id IN "),
            unique_delete_head: u("DELETE FROM {unique} WHERE job_id IN "),
            counts: q(&counts(dialect)),
            run_times: q(&format!("SELECT {RUN_TIMES} FROM {{done}} WHERE queue = ?")),
            run_time_at: q("SELECT duration_us AS n FROM {done} \
                 WHERE queue = ? AND duration_us IS NOT NULL \
                 ORDER BY duration_us LIMIT 1 OFFSET ?"),
            counts_up_to: q(&counts_up_to(dialect)),
            recent_run_times: q(&format!(
                "SELECT {RUN_TIMES} FROM (SELECT duration_us, finished_at FROM {{done}} \
                 WHERE queue = ? ORDER BY finished_at DESC LIMIT ?) r"
            )),
            recent_run_time_at: q("SELECT duration_us AS n FROM \
                 (SELECT duration_us FROM {done} WHERE queue = ? \
                 ORDER BY finished_at DESC LIMIT ?) r \
                 WHERE duration_us IS NOT NULL ORDER BY duration_us LIMIT 1 OFFSET ?"),
            estimates: JobState::ALL
                .into_iter()
                .filter_map(|state| Some((state, q(&estimate(dialect, state)?))))
                .collect(),
            queues: q(&queues(dialect)),
            job: q(&format!(
                "SELECT {jobs} FROM {{jobs}} WHERE id = ? \
                 UNION ALL SELECT {done} FROM {{done}} WHERE id = ?",
                jobs = read_columns("{jobs}"),
                done = read_columns("{done}"),
            )),
            list_floor: q(&list_floor("{jobs}")),
            list: q(&list_page(dialect, "{jobs}")),
            list_done_floor: q(&list_floor("{done}")),
            list_done: q(&list_page(dialect, "{done}")),
            dead_jobs: q("SELECT * FROM {jobs} WHERE queue = ? AND state = 3 \
                 ORDER BY finished_at DESC, id DESC LIMIT ? OFFSET ?"),
            retry_dead: q("UPDATE {jobs} SET state = 0, attempt = 0, run_at = {now}, \
                 finished_at = NULL, cancel_reason = NULL WHERE id = ? AND state = 3"),
            delete_dead: q("DELETE FROM {jobs} WHERE id = ? AND state = 3"),
            unique_delete: q("DELETE FROM {unique} WHERE job_id = ?"),
            cancel_lock: q(match dialect {
                Dialect::Sqlite => "SELECT state AS s FROM {jobs} WHERE id = ?",
                Dialect::Postgres | Dialect::Mysql => {
                    "SELECT state AS s FROM {jobs} WHERE id = ? FOR UPDATE"
                }
            }),
            cancel_pending: q("UPDATE {jobs} SET state = 4, finished_at = {now}, \
                 deadline = NULL, last_error = ? WHERE id = ? AND state = 0"),
            cancel_running: q(
                "UPDATE {jobs} SET cancel_reason = COALESCE(cancel_reason, ?) \
                 WHERE id = ? AND state = 1",
            ),
            cancel_done: q("SELECT COUNT(*) AS n FROM {done} WHERE id = ?"),
            cancel_pushed: Stmt::new(&format!(
                "SELECT pg_notify('{}', ?)",
                cancels_channel(prefix)
            )),
            // The read sees the row as it was before the update, so one of
            // the two gives the state: the update's, of a pending or running
            // job it marks; the read's, of a job marked already or ended.
            // A job that ends while the update waits for its row is neither:
            // it reads as gone, and the waiter returns at once. Marking a
            // pending row wakes idle consumers once, as every update of one
            // does (`0001_jobs`).
            await_end: q("WITH m AS (UPDATE {jobs} SET awaited = TRUE \
                 WHERE id = ? AND state IN (0, 1) AND awaited IS NOT TRUE RETURNING state) \
                 SELECT state AS s FROM m UNION ALL SELECT state AS s FROM {jobs} \
                 WHERE id = ? AND (awaited OR state NOT IN (0, 1))"),
            purge: q("DELETE FROM {done} WHERE finished_at <= ?"),
            // through the partial index `jobs_cancelled` (MySQL: `jobs_lease`)
            purge_rates: q("DELETE FROM {rates} WHERE tat < {now}"),
            purge_cancelled: q("DELETE FROM {jobs} WHERE state = 4 AND finished_at <= ?"),
            // MySQL: a join, which reads the jobs through their index and
            // the keys through `unique_keys_job`, where a subquery would be
            // run for each key
            purge_unique: q(match dialect {
                Dialect::Mysql => {
                    "DELETE k FROM {unique} k JOIN {done} d ON d.id = k.job_id \
                     WHERE d.finished_at <= ?"
                }
                _ => {
                    "DELETE FROM {unique} WHERE job_id IN \
                     (SELECT id FROM {done} WHERE finished_at <= ?)"
                }
            }),
            purge_cancelled_unique: q(match dialect {
                Dialect::Mysql => {
                    "DELETE k FROM {unique} k JOIN {jobs} j ON j.id = k.job_id \
                     WHERE j.state = 4 AND j.finished_at <= ?"
                }
                _ => {
                    "DELETE FROM {unique} WHERE job_id IN \
                     (SELECT id FROM {jobs} WHERE state = 4 AND finished_at <= ?)"
                }
            }),
            unique_lock: q(match dialect {
                Dialect::Postgres => {
                    "INSERT INTO {unique} (unique_key, job_id) VALUES (?, 0) \
                     ON CONFLICT (unique_key) DO UPDATE SET job_id = {unique}.job_id \
                     RETURNING job_id AS n"
                }
                Dialect::Sqlite => {
                    "INSERT INTO {unique} (unique_key, job_id) VALUES (?, 0) \
                     ON CONFLICT (unique_key) DO UPDATE SET job_id = job_id \
                     RETURNING job_id AS n"
                }
                // an exclusive lock on the row, found or inserted
                Dialect::Mysql => {
                    "INSERT INTO {unique} (unique_key, job_id) VALUES (?, 0) \
                     ON DUPLICATE KEY UPDATE job_id = job_id"
                }
            }),
            unique_read: q("SELECT job_id AS n FROM {unique} WHERE unique_key = ? FOR UPDATE"),
            unique_holder: q(
                "SELECT state AS s, finished_at, {now} AS db_now FROM {jobs} \
                 WHERE id = ? UNION ALL SELECT state AS s, finished_at, {now} AS db_now \
                 FROM {done} WHERE id = ?",
            ),
            unique_take: q("UPDATE {unique} SET job_id = ? WHERE unique_key = ?"),
            pause: q(&match dialect {
                Dialect::Postgres => format!(
                    "INSERT INTO {{paused}} (queue, paused_at) SELECT ?, {{now}} \
                     WHERE {SYNC_ON} ON CONFLICT DO NOTHING"
                ),
                Dialect::Sqlite => {
                    "INSERT OR IGNORE INTO {paused} (queue, paused_at) VALUES (?, {now})".to_owned()
                }
                Dialect::Mysql => {
                    "INSERT INTO {paused} (queue, paused_at) VALUES (?, {now})".to_owned()
                }
            }),
            // PostgreSQL: the deletion commits durably, as the pause does
            resume: q(&match dialect {
                Dialect::Postgres => {
                    format!("DELETE FROM {{paused}} WHERE queue = ? AND {SYNC_ON}")
                }
                _ => "DELETE FROM {paused} WHERE queue = ?".to_owned(),
            }),
            paused: q("SELECT queue AS name FROM {paused}"),
            is_paused: q("SELECT COUNT(*) AS n FROM {paused} WHERE queue = ?"),
            consumer_register: q(match dialect {
                Dialect::Mysql => {
                    "INSERT INTO {consumers} (id, info, seen_at, expires_at) \
                     VALUES (?, ?, {now}, {now} + ?) ON DUPLICATE KEY UPDATE \
                     info = VALUES(info), seen_at = VALUES(seen_at), \
                     expires_at = VALUES(expires_at)"
                }
                _ => {
                    "INSERT INTO {consumers} (id, info, seen_at, expires_at) \
                     VALUES (?, ?, {now}, {now} + ?) ON CONFLICT (id) DO UPDATE SET \
                     info = excluded.info, seen_at = excluded.seen_at, \
                     expires_at = excluded.expires_at"
                }
            }),
            consumer_unregister: q("DELETE FROM {consumers} WHERE id = ?"),
            consumers_forget: q("DELETE FROM {consumers} WHERE expires_at <= {now} - ?"),
            consumers: q("SELECT id, info, seen_at, expires_at, {now} AS db_now FROM {consumers}"),
            claim_tick: q(claim_tick),
            last_tick: q("SELECT MAX(tick) AS n FROM {ticks} WHERE name = ?"),
            now: q("SELECT {now} AS n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_of;

    #[test]
    fn the_unknown_state_condition_is_exactly_the_codes_outband_does_not_know() {
        for code in [i32::MIN, -1, 0, 1, 2, 3, 4, 5, 9, i32::MAX] {
            let unknown = !(0..=4).contains(&code);
            assert_eq!(state_of(code).is_none(), unknown, "{code}");
        }
        // the latest definition of the index of unknown state codes
        for index in [
            include_str!("../migrations/sqlite/0008_cancel.up.sql"),
            include_str!("../migrations/postgres/0008_cancel.up.sql"),
        ] {
            assert!(
                index.contains(&format!("WHERE {UNKNOWN_STATE};")),
                "{index}"
            );
        }
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let sql = recover_unknown(dialect);
            assert_eq!(
                sql.matches('?').count(),
                1,
                "only the id's placeholder: {sql}"
            );
            assert!(
                sql.contains("(pending 0, running 1, done 2, dead 3, cancelled 4)"),
                "{sql}"
            );
        }
    }

    /// The triggers of an awaited job's end notify the channel its
    /// waiters listen on.
    #[cfg(feature = "postgres")]
    #[test]
    fn the_end_of_an_awaited_job_notifies_the_channel_waiters_listen_on() {
        let migration = include_str!("../migrations/postgres/0009_awaited.up.sql");
        let notify = format!("pg_notify('{}', CAST(id AS TEXT))", finished_channel("{p}"));
        assert_eq!(migration.matches(&notify).count(), 2, "{migration}");
    }

    /// Deleting a row of the paused table, a resume, notifies the channel
    /// idle consumers listen on, as an enqueue does.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_resume_notifies_the_channel_idle_consumers_listen_on() {
        let migration = include_str!("../migrations/postgres/0010_paused.up.sql");
        let notify = format!("pg_notify('{}', '')", ready_channel("{p}"));
        assert!(migration.contains(&notify), "{migration}");
    }

    #[test]
    fn prefixes_are_identifiers() {
        for good in ["", "outband_", "t1_", "_x", "ABC"] {
            assert!(validate_prefix(good).is_ok(), "{good}");
        }
        assert!(validate_prefix(&"x".repeat(MAX_PREFIX)).is_ok());
        for bad in [
            "1x",
            "a-b",
            "a b",
            "x;drop table y",
            "é",
            &"x".repeat(MAX_PREFIX + 1),
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }
}
