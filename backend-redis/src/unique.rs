//! Unique jobs: [`BaseQueue::enqueue_unique`](outband::BaseQueue::enqueue_unique)
//! on one server and on a cluster, and the purge's sweep of the keys whose
//! holders are gone.
//!
//! A unique key `K` lives in a bucket of its own, `FNV-1a(K) mod 4096`, as
//! a queue name does; with `U` the tag of that bucket, `U:u` maps the key
//! to the id of the last job stored with it. That job holds the key while
//! its record says so (`UniqueUntil::holds`, on the server's clock); a
//! mapping whose record is gone (purged, expired, deleted, flushed) holds
//! nothing, and the purge drops it. The buckets that ever mapped a key are
//! listed in `namespace:uniques`, for that sweep.
//!
//! On one server, the look at the holder and the store are one script,
//! which runs the enqueue script inside it: one round trip. On a cluster the
//! mapping, the holder's record and the new job may be on three nodes, so a
//! unique enqueue takes one-slot steps under a reservation of the key
//! (`U:ur:K`, `SET NX PX`) that racing producers wait for: reserve and read
//! the mapping; read the holder's state and the server's time in the
//! holder's slot; store the job as `enqueue` does; map the key and drop the
//! reservation. Four round trips; three when no job took the key before,
//! and three for a duplicate.

use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outband::backend::fate;
use outband::{Enqueued, Error, JobId, JobState, NewJob, Unique, UniqueUntil};
use redis::Value;

use crate::scripts::SCRIPTS;
use crate::{RedisQueue, SEQ_BITS, STEP, array, bucket_of, int, ms, split_id, text, time_of};

/// How long a cluster producer's reservation of a unique key lasts: longer
/// than the three steps it covers take, short enough that a producer that
/// died holding it blocks the key's other producers only that long.
const RESERVATION: Duration = Duration::from_secs(5);
/// How long a producer waits for another's reservation before it gives up.
const RESERVATION_WAIT: Duration = Duration::from_secs(6);

/// What tells this process's reservations apart from others'.
static TOKENS: AtomicU64 = AtomicU64::new(0);

/// The scope of `until` as the unique scripts read it: `s`, `f`, or the
/// window after `done` in ms.
fn scope_arg(until: UniqueUntil) -> Result<String, Error> {
    match until {
        UniqueUntil::Started => Ok("s".to_owned()),
        UniqueUntil::Finished => Ok("f".to_owned()),
        UniqueUntil::FinishedFor(window) => Ok(ms(window).to_string()),
        other => Err(Error::backend(format!(
            "a unique scope this backend does not know: {other:?}"
        ))),
    }
}

impl RedisQueue {
    /// The hash that maps unique keys of `bucket` to their holders' ids.
    pub(crate) fn unique_map(&self, bucket: u64) -> String {
        format!("{}:u", self.tag(bucket))
    }

    /// The set of the buckets that ever mapped a unique key.
    fn uniques_key(&self) -> String {
        format!("{}:uniques", self.options.namespace)
    }

    /// Lists `bucket` in `namespace:uniques`, once per handle.
    fn list_unique_bucket(&self, bucket: u64) -> Result<(), Error> {
        let listed = self
            .unique_buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&bucket);
        if !listed {
            let key = self.uniques_key();
            self.pool.with(|con| {
                redis::cmd("SADD")
                    .arg(&key)
                    .arg(bucket)
                    .query::<i64>(con.like())
            })?;
            self.unique_buckets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(bucket);
        }
        Ok(())
    }

    pub(crate) fn enqueue_unique_job(&self, job: &NewJob) -> Result<Enqueued, Error> {
        let Some(unique) = fate::validate_unique(job)?.cloned() else {
            let ids = self.store(job)?;
            return ids
                .into_iter()
                .next()
                .map(Enqueued::new)
                .ok_or_else(|| Error::backend("the enqueue returned no id for one job"));
        };
        let scope = scope_arg(unique.until)?;
        self.list_unique_bucket(bucket_of(&unique.key))?;
        if self.pool.is_cluster() {
            self.enqueue_unique_cluster(job, &unique)
        } else {
            self.enqueue_unique_one_server(job, &unique, &scope)
        }
    }

    /// Stores `job` as `enqueue_many` stores a batch of one, its unique key
    /// aside; returns its id.
    fn store(&self, job: &NewJob) -> Result<Vec<JobId>, Error> {
        let Some(call) = self.call_of(std::slice::from_ref(job)) else {
            return Ok(Vec::new());
        };
        self.send_call(call)
    }

    /// One script: the holder's look and the store (see the module docs).
    fn enqueue_unique_one_server(
        &self,
        job: &NewJob,
        unique: &Unique,
        scope: &str,
    ) -> Result<Enqueued, Error> {
        let (new_queues, register) = self.registration(std::slice::from_ref(job));
        if let Some(register) = &register {
            self.pool.with(|con| register.query::<i64>(con.like()))?;
            self.registered(new_queues);
        }
        let mut invocation = self.invocation(&SCRIPTS.enqueue_unique, bucket_of(&unique.key));
        invocation
            .arg(&unique.key)
            .arg(scope)
            .arg(&self.options.namespace);
        // the script replies with the job's number, not the batch's list
        let _ = self.batch_args(&mut invocation, std::slice::from_ref(job));
        let reply = array(self.invoke::<Value>(&invocation)?);
        let [duplicate, id] = reply.as_slice() else {
            return Err(Error::backend(
                "the unique enqueue script returned a wrong reply",
            ));
        };
        if int(duplicate) == 1 {
            let holder = text(id)
                .parse()
                .map_err(|_| Error::backend("the unique enqueue script returned a bad id"))?;
            return Ok(Enqueued::duplicate_of(JobId(holder)));
        }
        let seq = u64::try_from(int(id)).unwrap_or(0);
        Ok(Enqueued::new(JobId(
            (bucket_of(&job.queue) << SEQ_BITS) | seq,
        )))
    }

    /// On a cluster: reserve the key and read its mapping (in the key's
    /// slot), read the holder's state and the server's time (in the
    /// holder's slot), store the job (in its queue's slot), map the key and
    /// release the reservation (in the key's slot). A producer that finds
    /// the key reserved waits for the reservation's end and starts again.
    pub(crate) fn enqueue_unique_cluster(
        &self,
        job: &NewJob,
        unique: &Unique,
    ) -> Result<Enqueued, Error> {
        let bucket = bucket_of(&unique.key);
        let token = format!(
            "{}:{}:{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
            TOKENS.fetch_add(1, Ordering::Relaxed)
        );
        let give_up = Instant::now() + RESERVATION_WAIT;
        let holder = loop {
            let mut reserve = self.invocation(&SCRIPTS.unique_reserve, bucket);
            reserve.arg(&unique.key).arg(&token).arg(ms(RESERVATION));
            let reply = array(self.invoke::<Value>(&reserve)?);
            match reply.as_slice() {
                [reserved, holder] if int(reserved) == 1 => break text(holder),
                _ if Instant::now() < give_up => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    return Err(Error::unavailable(format!(
                        "the unique key `{}` stayed reserved by another producer",
                        unique.key
                    )));
                }
            }
        };
        let stored = self.take_key_held(job, unique, &holder);
        let mut release = self.invocation(&SCRIPTS.unique_release, bucket);
        release.arg(&unique.key).arg(&token);
        match &stored {
            Ok(enqueued) if !enqueued.duplicate => release.arg(enqueued.id.0),
            _ => release.arg(""),
        };
        let released = self.invoke::<i64>(&release);
        let stored = stored?;
        released?;
        Ok(stored)
    }

    /// Under the reservation: a duplicate of `holder` if it still holds
    /// the key, else the job stored.
    fn take_key_held(
        &self,
        job: &NewJob,
        unique: &Unique,
        holder: &str,
    ) -> Result<Enqueued, Error> {
        if let Some((id, (bucket, seq))) = holder
            .parse()
            .ok()
            .map(JobId)
            .and_then(|id| Some((id, split_id(id)?)))
        {
            let mut look = self.invocation(&SCRIPTS.unique_holder, bucket);
            look.arg(seq);
            let reply = array(self.invoke::<Value>(&look)?);
            let [state, finished, now] = reply.as_slice() else {
                return Err(Error::backend(
                    "the unique holder script returned a wrong reply",
                ));
            };
            // a record that names no state, or one this crate does not
            // know, reads as dead, as `job` reads it
            let state = text(state);
            let state =
                (!state.is_empty()).then(|| JobState::parse(&state).unwrap_or(JobState::Dead));
            let finished = (!text(finished).is_empty()).then(|| time_of(int(finished)));
            if let Some(state) = state
                && unique.until.holds(state, finished, time_of(int(now)))
            {
                return Ok(Enqueued::duplicate_of(id));
            }
        }
        let ids = self.store(job)?;
        ids.into_iter()
            .next()
            .map(Enqueued::new)
            .ok_or_else(|| Error::backend("the enqueue returned no id for one job"))
    }

    /// Drops the mappings of unique keys whose holders' records are gone,
    /// in every listed bucket, a step of [`STEP`] keys at a time: scan the
    /// map, look whether each holder's record exists (one pipeline), forget
    /// those that do not (one script, which leaves a key that a new job
    /// took meanwhile). Returns how many keys it forgot.
    pub(crate) fn forget_gone_holders(&self) -> Result<u64, Error> {
        let key = self.uniques_key();
        let buckets: Vec<u64> = self
            .pool
            .with(|con| redis::cmd("SMEMBERS").arg(&key).query(con.like()))?;
        let mut forgot = 0;
        for bucket in buckets {
            let map = self.unique_map(bucket);
            let mut cursor = 0u64;
            loop {
                let (next, pairs): (u64, Vec<(String, String)>) = self.pool.with(|con| {
                    redis::cmd("HSCAN")
                        .arg(&map)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(STEP)
                        .query(con.like())
                })?;
                forgot += self.forget_if_gone(bucket, &pairs)?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(forgot)
    }

    fn forget_if_gone(&self, bucket: u64, pairs: &[(String, String)]) -> Result<u64, Error> {
        let holders: Vec<Option<(u64, u64)>> = pairs
            .iter()
            .map(|(_, id)| split_id(JobId(id.parse().ok()?)))
            .collect();
        let alive = self.records_alive(&holders)?;
        let mut forget = self.invocation(&SCRIPTS.unique_forget, bucket);
        let mut any = false;
        for ((key, id), holder) in pairs.iter().zip(&holders) {
            // not an id of ours: nothing holds the key
            let gone = holder.is_none_or(|holder| !alive.contains(&holder));
            if gone {
                forget.arg(key).arg(id);
                any = true;
            }
        }
        if !any {
            return Ok(0);
        }
        Ok(u64::try_from(self.invoke::<i64>(&forget)?).unwrap_or(0))
    }

    /// Which of the records `(bucket, number)` exist: one script call on one
    /// server, one per bucket on a cluster, where the records of a bucket
    /// share its slot.
    fn records_alive(&self, records: &[Option<(u64, u64)>]) -> Result<HashSet<(u64, u64)>, Error> {
        let mut groups: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
        for &(bucket, seq) in records.iter().flatten() {
            let group = if self.pool.is_cluster() { bucket } else { 0 };
            groups.entry(group).or_default().push((bucket, seq));
        }
        let mut alive = HashSet::new();
        for (group, members) in groups {
            let mut look = SCRIPTS.unique_alive.prepare_invoke();
            look.key(self.seq_key(group));
            for (bucket, seq) in &members {
                look.arg(format!("{}:j:{seq}", self.tag(*bucket)));
            }
            let found: Vec<i64> = self.invoke(&look)?;
            alive.extend(
                members
                    .into_iter()
                    .zip(found)
                    .filter(|&(_, exists)| exists == 1)
                    .map(|(record, _)| record),
            );
        }
        Ok(alive)
    }
}
