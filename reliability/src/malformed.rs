//! Malformed job records, and writing them straight into a backend's storage,
//! past the enqueue API and its checks.
//!
//! [`generate`] makes the five kinds of [`Kind::ALL`] from a seed, so a run
//! can be repeated; [`write`](fn@write) stores them in the backend's own
//! layout: rows of `<prefix>jobs` inserted with raw SQL (outband-diesel), or
//! a record hash, a ready-list entry and the pending count set with raw Redis
//! commands (outband-redis, as its crate docs lay the keys out). Each written
//! record is `pending` and ready at once, so the next claim of its queue
//! finds it.
//!
//! [`unknown_state`] makes a sixth kind, for the SQL databases only: a row
//! whose state code outband does not know, as a broken migration or a
//! manual fix might leave it. No claim finds it; the manager's recovery step
//! (`recover_expired`) moves it to `dead`.

use std::time::{SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer, Text};
use outband::{Error, JobId, codec};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::servers::Store;

/// The kinds of malformed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Random bytes as the arguments of a known command.
    RandomBytes,
    /// A command name no consumer knows, with well-formed arguments.
    UnknownCommand,
    /// A record cut short: its arguments end mid-value, or (every other
    /// record) fields are missing.
    Truncated,
    /// Arguments over the payload limit.
    Oversized,
    /// Arguments of the wrong types for the command.
    WrongTypes,
    /// A well-formed job whose row's state code is none outband knows (SQL
    /// only; made by [`unknown_state`], not by [`generate`]).
    UnknownState,
}

impl Kind {
    /// The kinds [`generate`] makes, which every backend stores.
    pub const ALL: [Kind; 5] = [
        Self::RandomBytes,
        Self::UnknownCommand,
        Self::Truncated,
        Self::Oversized,
        Self::WrongTypes,
    ];

    /// The kind's name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::RandomBytes => "random bytes",
            Self::UnknownCommand => "unknown command",
            Self::Truncated => "truncated",
            Self::Oversized => "oversized",
            Self::WrongTypes => "wrong types",
            Self::UnknownState => "unknown state",
        }
    }
}

/// One malformed record, as [`write`](fn@write) stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRecord {
    /// What is wrong with it.
    pub kind: Kind,
    /// The command name stored.
    pub command: String,
    /// The arguments stored, as they are.
    pub args: Vec<u8>,
    /// The attempts the record allows.
    pub max_attempts: u32,
    /// Whether fields are missing (a truncated record): no arguments or
    /// queue in Redis, an empty command name and no attempts in SQL.
    pub fields_missing: bool,
    /// The code of the row's state in SQL: pending's, 0, but for an
    /// [`Kind::UnknownState`] record.
    pub state_code: i32,
}

impl BadRecord {
    /// Text the reason of the record's `dead` job must contain.
    pub fn expected_reason(&self) -> &'static str {
        match self.kind {
            Kind::UnknownCommand => "unknown command",
            Kind::UnknownState => "is not one outband knows",
            Kind::Oversized => "over the limit",
            Kind::Truncated if self.fields_missing => "malformed record",
            Kind::RandomBytes | Kind::Truncated | Kind::WrongTypes => "undecodable arguments",
        }
    }
}

/// What a wrong-typed call of a command taking `(u64, String)` may carry.
#[derive(Serialize)]
enum Wrong {
    Swapped(String, u64),
    Floats(Vec<f64>),
    Nested(Vec<(bool, String)>, Option<i32>),
    Text(String),
}

/// `count` malformed records for `command`, whose arguments decode as `A`,
/// kinds in turn; `valid` makes well-formed arguments for it and `limit` is
/// the payload limit in force. Records that happen to decode as `A` anyway
/// (random bytes can) are replaced, so every record is malformed.
pub fn generate<A: DeserializeOwned>(
    count: usize,
    command: &str,
    valid: impl Fn(u64) -> Vec<u8>,
    limit: usize,
    seed: u64,
) -> Vec<BadRecord> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut records = Vec::with_capacity(count);
    let mut i = 0u64;
    while records.len() < count {
        let kind = Kind::ALL[records.len() % Kind::ALL.len()];
        i += 1;
        let mut record = BadRecord {
            kind,
            command: command.to_owned(),
            args: Vec::new(),
            max_attempts: 1 + rng.u32(..2),
            fields_missing: false,
            state_code: 0,
        };
        match kind {
            Kind::RandomBytes => {
                let len = rng.usize(..64);
                record.args = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
                if rng.bool() && len > 0 {
                    // a valid format tag, so the decoder gets past it
                    record.args[0] = 1;
                }
            }
            Kind::UnknownCommand => {
                record.command = format!("reliability::no_such_command_{}", rng.u32(..1000));
                record.args = valid(i);
            }
            Kind::Truncated => {
                let args = valid(i);
                record.args = args[..rng.usize(1..args.len())].to_vec();
                record.fields_missing = i.is_multiple_of(2);
            }
            Kind::Oversized => {
                record.args = vec![1];
                record.args.resize(limit + 1 + rng.usize(..256), 0);
            }
            Kind::UnknownState => unreachable!("not one of Kind::ALL"),
            Kind::WrongTypes => {
                let wrong = match rng.u8(..4) {
                    0 => Wrong::Swapped(format!("label {i}"), i),
                    1 => Wrong::Floats(vec![i as f64 + 0.5; rng.usize(1..5)]),
                    2 => Wrong::Nested(vec![(true, "x".repeat(rng.usize(..20)))], Some(-1)),
                    _ => Wrong::Text("a".repeat(rng.usize(100..200))),
                };
                record.args = codec::encode(&wrong).expect("encodes");
            }
        }
        let decodes = codec::decode::<A>(&record.args).is_ok();
        if record.fields_missing || kind == Kind::UnknownCommand || !decodes {
            records.push(record);
        }
    }
    records
}

/// A record of `command` with the well-formed arguments `args` whose SQL row
/// has the state code `code`, one outband does not know (not 0 to 3).
pub fn unknown_state(command: &str, args: Vec<u8>, code: i32) -> BadRecord {
    BadRecord {
        kind: Kind::UnknownState,
        command: command.to_owned(),
        args,
        max_attempts: 1,
        fields_missing: false,
        state_code: code,
    }
}

/// Milliseconds or microseconds since the Unix epoch, now, on this host.
fn epoch(micros: bool) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let value = if micros {
        now.as_micros()
    } else {
        now.as_millis()
    };
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Stores `records` as jobs of `queue`, straight into `store`, and returns
/// their ids in order: pending, but for [`Kind::UnknownState`] records,
/// which only SQL stores.
pub fn write(store: &Store, queue: &str, records: &[BadRecord]) -> Result<Vec<JobId>, Error> {
    match store {
        Store::Sql { url, prefix } => write_sql(url, prefix, queue, records),
        Store::Redis {
            backend: redis_queue,
            ..
        } => write_redis(redis_queue, queue, records),
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The SQL values of a record: command, args, max_attempts.
fn sql_values(record: &BadRecord) -> (&str, &[u8], i32) {
    if record.fields_missing {
        ("", &record.args, 0)
    } else {
        let attempts = i32::try_from(record.max_attempts).unwrap_or(i32::MAX);
        (&record.command, &record.args, attempts)
    }
}

/// Inserts every record in one transaction, one row per statement; `$id`
/// reads the new row's id.
macro_rules! insert_rows {
    ($conn:expr, $sql:expr, $queue:expr, $records:expr, |$c:ident, $q:ident| $id:expr) => {{
        let now = epoch(true);
        $conn.transaction(|conn| {
            let mut ids = Vec::with_capacity($records.len());
            for record in $records {
                let (command, args, attempts) = sql_values(record);
                let query = diesel::sql_query($sql)
                    .bind::<Text, _>(command)
                    .bind::<Binary, _>(args)
                    .bind::<Text, _>($queue)
                    .bind::<Integer, _>(attempts)
                    .bind::<Integer, _>(record.state_code)
                    .bind::<BigInt, _>(now)
                    .bind::<BigInt, _>(now);
                let id: i64 = {
                    let ($c, $q) = (&mut *conn, query);
                    $id?
                };
                ids.push(JobId(u64::try_from(id).unwrap_or_default()));
            }
            diesel::QueryResult::Ok(ids)
        })
    }};
}

fn write_sql(
    url: &str,
    prefix: &str,
    queue: &str,
    records: &[BadRecord],
) -> Result<Vec<JobId>, Error> {
    let columns = format!(
        "INSERT INTO {prefix}jobs (command, args, queue, max_attempts, state, run_at, \
         enqueued_at) VALUES"
    );
    let ids = if url.starts_with("postgres") {
        let mut conn = PgConnection::establish(url).map_err(Error::unavailable)?;
        let sql = format!("{columns} ($1, $2, $3, $4, $5, $6, $7) RETURNING id AS n");
        insert_rows!(conn, &sql, queue, records, |c, q| q
            .get_result::<Id>(c)
            .map(|r| r.n))
    } else if url.starts_with("mysql") || url.starts_with("mariadb") {
        let mut conn = MysqlConnection::establish(url).map_err(Error::unavailable)?;
        let sql = format!("{columns} (?, ?, ?, ?, ?, ?, ?)");
        insert_rows!(conn, &sql, queue, records, |c, q| RunQueryDsl::execute(
            q, c
        )
        .and_then(|_| {
            diesel::sql_query("SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS n")
                .get_result::<Id>(c)
                .map(|r| r.n)
        }))
    } else {
        let mut conn = SqliteConnection::establish(url).map_err(Error::unavailable)?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA busy_timeout = 10000",
        )
        .map_err(Error::backend)?;
        let sql = format!("{columns} (?, ?, ?, ?, ?, ?, ?) RETURNING id AS n");
        insert_rows!(conn, &sql, queue, records, |c, q| q
            .get_result::<Id>(c)
            .map(|r| r.n))
    };
    ids.map_err(Error::backend)
}

fn write_redis(
    redis_queue: &outband_redis::RedisQueue,
    queue: &str,
    records: &[BadRecord],
) -> Result<Vec<JobId>, Error> {
    if records.iter().any(|r| r.kind == Kind::UnknownState) {
        return Err(Error::backend(
            "a record of an unknown state code is an SQL row; Redis keeps state names",
        ));
    }
    // `base` is `{namespace:bucket}:len:queue`; the hash tag names the bucket
    let (base, _) = outband_redis::keys_of(redis_queue, queue, JobId(1));
    let tag_end = base.find('}').map_or(0, |i| i + 1);
    let tag = &base[..tag_end];
    let bucket: u64 = tag
        .trim_end_matches('}')
        .rsplit(':')
        .next()
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| Error::backend(format!("unexpected key layout: {base}")))?;
    let namespace = &tag[1..tag.rfind(':').unwrap_or(1)];
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let now = epoch(false);
    outband_redis::with_connection(redis_queue, |con| {
        let last: i64 = redis::cmd("INCRBY")
            .arg(format!("{tag}:seq"))
            .arg(count)
            .query(con)?;
        let first = last - count + 1;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut ids = Vec::with_capacity(records.len());
        for (offset, record) in (0i64..).zip(records) {
            let seq = first + offset;
            let job_key = format!("{tag}:j:{seq}");
            let mut hset = redis::cmd("HSET");
            hset.arg(&job_key)
                .arg("s")
                .arg("pending")
                .arg("c")
                .arg(&record.command);
            hset.arg("m").arg(record.max_attempts).arg("e").arg(now);
            if !record.fields_missing {
                hset.arg("a").arg(&record.args).arg("q").arg(queue);
            }
            pipe.add_command(hset).ignore();
            pipe.cmd("RPUSH")
                .arg(format!("{base}:r:0"))
                .arg(seq)
                .ignore();
            ids.push(JobId(
                (bucket << 40) | u64::try_from(seq).unwrap_or_default(),
            ));
        }
        pipe.cmd("ZADD")
            .arg(format!("{base}:pr"))
            .arg(0)
            .arg(0)
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(format!("{base}:n"))
            .arg("p")
            .arg(count)
            .ignore();
        pipe.cmd("SADD")
            .arg(format!("{namespace}:queues"))
            .arg(queue)
            .ignore();
        pipe.cmd("RPUSH")
            .arg(format!("{base}:wake"))
            .arg(1)
            .ignore();
        pipe.query::<()>(con)?;
        Ok(ids)
    })
}
