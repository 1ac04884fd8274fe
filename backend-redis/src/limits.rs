//! Concurrency and rate limits on a Redis Cluster, where a limit's keys (in
//! the slot of the key's own bucket) are on another node than the queue
//! scripts that claim and end jobs: the steps that the caller runs between
//! them. On one server the scripts touch the limit's keys themselves and
//! none of this runs.
//!
//! A cluster claim holds each limited job it pops (`B:lh`, under a new
//! token) and returns it; [`RedisQueue::settle_held`] checks the jobs' keys
//! on their nodes ([`LIMIT_TAKE`](crate::scripts), one call per slot), then
//! settles them in the queue's slot: claimed if a slot was taken, parked if
//! not. A script that takes a limited job out of `running` (or out of a
//! hold or the parked set) returns the limit changes it could not make;
//! [`RedisQueue::apply_limits`] makes them: it frees the slot, and makes the
//! first parked job ready in its own slot. A process that dies between those
//! steps leaves them undone; [`RedisQueue::sweep_limits`], run by
//! `recover_expired`, makes them for the keys a claim listed in
//! `namespace:limits`.
//!
//! Rate limits take the same path: a held job whose concurrency key (if it
//! has one) took a slot has its rate key's turn checked on that key's node
//! (`RATE_TAKE`), and its slot goes back when the turn has not come. A
//! turn that comes for a job of the queue is returned by the claim script,
//! and [`RedisQueue::claimed_from`] makes the first job parked on the key
//! ready, in the key's slot, the job's and the queue's.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use outband::{Claimed, Error, JobId};
use redis::Value;

use crate::scripts::SCRIPTS;
use crate::{RedisQueue, SEQ_BITS, array, claimed_of, int, text};

/// How long a handle's listing of a concurrency key in `namespace:limits`
/// stands before its next claim of the key lists it again.
const LIMIT_RELIST: Duration = Duration::from_secs(600);
/// How long after its last listing the sweep drops a key it finds with
/// neither running nor parked jobs: longer than [`LIMIT_RELIST`], so a key
/// is not dropped between a claim's listing and its taking a slot.
const LIMIT_FORGET_AFTER: Duration = Duration::from_secs(3600);

/// A limited job a cluster claim held, or a rate key whose turn came for a
/// job of the queue parked on it, as the claim script returned it.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) seq: u64,
    /// The hold's token; for a turn, the score the claim gave the key in
    /// `B:tn`.
    pub(crate) token: i64,
    /// The concurrency key's prefix (`""` for none), its max, the job's
    /// running member, its parked score and parked member, the rate key's
    /// prefix (`""` for none), its max and its period (µs); for a turn, the
    /// rate key's prefix alone.
    pub(crate) check: Vec<Value>,
    /// A rate key's turn, not a job.
    pub(crate) turn: bool,
}

impl Held {
    fn field(&self, index: usize) -> String {
        self.check.get(index).map(text).unwrap_or_default()
    }

    fn prefix(&self) -> String {
        self.field(0)
    }

    fn running_member(&self) -> String {
        self.field(2)
    }

    fn rate_prefix(&self) -> String {
        self.field(5)
    }

    /// [`LIMIT_TAKE`](crate::scripts)'s fields for this job.
    fn limit_check(&self) -> Vec<String> {
        (0..5).map(|index| self.field(index)).collect()
    }

    /// `RATE_TAKE`'s fields for this job.
    fn rate_check(&self) -> Vec<String> {
        [5, 6, 7, 3, 4].map(|index| self.field(index)).to_vec()
    }
}

/// The hash tag (`{namespace:bucket}`) a key or member names first.
fn tag_in(name: &str) -> Option<&str> {
    let start = name.find('{')?;
    let end = start + name[start..].find('}')?;
    Some(&name[start..=end])
}

/// The limit changes a script left to the caller: triples of prefix,
/// running member and parked member (each `""` for none), after the `skip`
/// values of the script's own reply.
pub(crate) fn limit_changes(reply: &[Value], skip: usize) -> Vec<[String; 3]> {
    reply
        .get(skip..)
        .unwrap_or_default()
        .chunks_exact(3)
        .map(|t| [text(&t[0]), text(&t[1]), text(&t[2])])
        .collect()
}

impl RedisQueue {
    /// `1` on a cluster, where scripts leave the changes of limits' keys to
    /// the caller.
    pub(crate) fn cluster_flag(&self) -> u8 {
        u8::from(self.pool.is_cluster())
    }

    /// One limit step in the limit's slot (see `LIMIT_STEP`).
    fn limit_step(
        &self,
        prefix: &str,
        running: &str,
        parked: &str,
        look: bool,
    ) -> Result<String, Error> {
        let Some(tag) = tag_in(prefix) else {
            return Ok(String::new());
        };
        let mut invocation = SCRIPTS.limit_step.prepare_invoke();
        invocation
            .key(format!("{tag}:seq"))
            .arg(prefix)
            .arg(running)
            .arg(parked)
            .arg(u8::from(look));
        Ok(text(&self.invoke::<Value>(&invocation)?))
    }

    /// Makes the changes of limits' keys that a cluster script returned:
    /// per change, one call in the limit's slot, and when it freed a slot
    /// with a job parked on the key, one call in that job's slot that
    /// makes it ready and one that takes it off the parked set (more when
    /// the first parked entries are stale).
    ///
    /// The script whose changes these are has applied its own (a job
    /// completed, cancelled, recovered), so a failure here is logged, not
    /// returned: the caller's answer stays what the script did. The change
    /// is then lost, as when the process dies at this point (see the crate
    /// docs' guarantees).
    pub(crate) fn apply_limits(&self, changes: &[[String; 3]]) {
        for change in changes {
            if let Err(error) = self.apply_limit(change) {
                log::warn!(
                    "giving back a slot of the concurrency limit {} failed: {error}",
                    change[0]
                );
            }
        }
    }

    fn apply_limit(&self, [prefix, running, parked]: &[String; 3]) -> Result<(), Error> {
        self.give_back(prefix, running, parked, false).map(|_| ())
    }

    /// Removes `running` (a slot) and `parked` from limit `prefix`'s keys
    /// (`""` for none); when that freed a slot, or when `look` asks, the
    /// first job parked on the key is made ready in its slot. `true` when a
    /// job was made ready.
    fn give_back(
        &self,
        prefix: &str,
        running: &str,
        parked: &str,
        look: bool,
    ) -> Result<bool, Error> {
        let mut next = self.limit_step(prefix, running, parked, look)?;
        // stale entries (jobs claimed, cancelled or flushed since) are
        // passed by, a bounded number per change
        for _ in 0..100 {
            if next.is_empty() {
                break;
            }
            let ready = self.ready_parked(&next)?;
            next = self.limit_step(prefix, "", &next, !ready)?;
            if ready {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `namespace:limits`: on a cluster, the prefixes of the concurrency
    /// keys that claims took slots of or parked jobs on, by when a handle
    /// last listed them (ms of the server's clock), for the sweep.
    fn limits_key(&self) -> String {
        format!("{}:limits", self.options.namespace)
    }

    /// Lists the concurrency keys of `held` in `namespace:limits`, before
    /// their slots are taken: one call for the keys this handle has not
    /// listed within [`LIMIT_RELIST`]. A failure is logged and the keys
    /// are listed again by the next claim: the claim does not depend on
    /// the list's node.
    fn list_limits(&self, held: &[Held]) {
        let now = Instant::now();
        let fresh = |at: &Instant| now.duration_since(*at) < LIMIT_RELIST;
        let unlisted: Vec<String> = {
            let listed = self
                .limit_prefixes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut unlisted: Vec<String> = held
                .iter()
                .map(Held::prefix)
                .filter(|p| !p.is_empty() && !listed.get(p).is_some_and(fresh))
                .collect();
            unlisted.sort_unstable();
            unlisted.dedup();
            unlisted
        };
        if unlisted.is_empty() {
            return;
        }
        let mut invocation = SCRIPTS.limit_register.prepare_invoke();
        invocation.key(self.limits_key()).arg(&unlisted);
        if let Err(error) = self.invoke::<i64>(&invocation) {
            log::warn!("listing concurrency limits for the sweep failed: {error}");
            return;
        }
        let mut listed = self
            .limit_prefixes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if listed.len() > 10_000 {
            listed.retain(|_, at| fresh(at));
        }
        listed.extend(unlisted.into_iter().map(|p| (p, now)));
    }

    /// On a cluster, repairs the concurrency keys of `namespace:limits`
    /// that a process left as it should not (it died, or lost a node,
    /// between the steps of a completion): a running member whose job no
    /// longer holds the slot under its token is removed, and its slot
    /// given back as a completion gives it; a job parked while its key has
    /// room is made ready. The keys found empty and listed longer than
    /// [`LIMIT_FORGET_AFTER`] ago are dropped from the list. A key whose
    /// sweep fails is logged and left to the next sweep.
    pub(crate) fn sweep_limits(&self) -> Result<(), Error> {
        let key = self.limits_key();
        let prefixes: Vec<String> = self.pool.with(|con| {
            redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(con.like())
        })?;
        let mut empty = Vec::new();
        for prefix in prefixes {
            match self.sweep_limit(&prefix) {
                Ok(true) => empty.push(prefix),
                Ok(false) => {}
                Err(error) => {
                    log::warn!("the sweep of the concurrency limit {prefix} failed: {error}");
                }
            }
        }
        for chunk in empty.chunks(1000) {
            let mut invocation = SCRIPTS.limit_forget.prepare_invoke();
            invocation
                .key(&key)
                .arg(crate::ms(LIMIT_FORGET_AFTER))
                .arg(chunk);
            self.invoke::<i64>(&invocation)?;
        }
        Ok(())
    }

    /// The sweep of one concurrency key; `true` when it has neither
    /// running nor parked jobs.
    fn sweep_limit(&self, prefix: &str) -> Result<bool, Error> {
        let (parked, running) = self.limit_look(prefix)?;
        if parked.is_empty() && running.is_empty() {
            return Ok(true);
        }
        // each member read, then checked in its job's slot, then removed
        // only as it was read: a member's token is its claim's, and a claim
        // that no longer holds its slot never holds it again
        let members: Vec<(&str, &str)> = running.iter().map(|m| ("r", m.as_str())).collect();
        let mut readied = 0;
        for ((_, member), live) in members.iter().zip(self.limit_check(&members)?) {
            if live == 0 && self.give_back(prefix, member, "", false)? {
                readied += 1;
            }
        }
        // jobs parked while the key has room, as many as it has room for,
        // by the first parked job's max
        for _ in 0..100 {
            let (parked, running) = self.limit_look(prefix)?;
            if parked.is_empty() {
                break;
            }
            let max = self
                .limit_check(&[("p", parked.as_str())])?
                .first()
                .copied()
                .unwrap_or(0);
            if max == 0 {
                // a stale entry, passed by as a give-back passes it by
                self.limit_step(prefix, "", &parked, false)?;
                continue;
            }
            let taken = i64::try_from(running.len()).unwrap_or(i64::MAX);
            if taken.saturating_add(readied) >= max || !self.give_back(prefix, "", "", true)? {
                break;
            }
            readied += 1;
        }
        Ok(false)
    }

    /// The first parked member and the running members of limit `prefix`.
    fn limit_look(&self, prefix: &str) -> Result<(String, Vec<String>), Error> {
        let Some(tag) = tag_in(prefix) else {
            return Ok((String::new(), Vec::new()));
        };
        let mut invocation = SCRIPTS.limit_look.prepare_invoke();
        invocation.key(format!("{tag}:seq")).arg(prefix);
        let mut reply: Vec<String> = self.invoke(&invocation)?;
        if reply.is_empty() {
            return Ok((String::new(), Vec::new()));
        }
        let parked = reply.remove(0);
        Ok((parked, reply))
    }

    /// `LIMIT_CHECK`'s answer for each of `members` (a kind and a member),
    /// one call per slot of their jobs; a member that names no slot is
    /// answered 1 (left as it is).
    fn limit_check(&self, members: &[(&str, &str)]) -> Result<Vec<i64>, Error> {
        let mut answers = vec![1; members.len()];
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (index, (_, member)) in members.iter().enumerate() {
            let Some(tag) = tag_in(member) else {
                continue;
            };
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, indexes)) => indexes.push(index),
                None => groups.push((tag, vec![index])),
            }
        }
        for (tag, indexes) in groups {
            let mut invocation = SCRIPTS.limit_check.prepare_invoke();
            invocation.key(format!("{tag}:seq"));
            for &index in &indexes {
                invocation.arg(members[index].0).arg(members[index].1);
            }
            let reply: Vec<i64> = self.invoke(&invocation)?;
            for (&index, answer) in indexes.iter().zip(reply) {
                answers[index] = answer;
            }
        }
        Ok(answers)
    }

    /// Makes parked member `member` ready in its job's slot; `false` when it
    /// is stale.
    fn ready_parked(&self, member: &str) -> Result<bool, Error> {
        let Some(tag) = tag_in(member) else {
            return Ok(false);
        };
        let mut invocation = SCRIPTS.ready_parked.prepare_invoke();
        invocation.key(format!("{tag}:seq")).arg(member);
        Ok(self.invoke::<i64>(&invocation)? == 1)
    }

    /// Groups the `members` of `held` by the tag of the prefix `prefix_of`
    /// gives, and runs `script` once per group with `fields` of each, in
    /// that group's slot; returns each member's reply, `width` values each.
    fn per_slot(
        &self,
        script: &redis::Script,
        held: &[Held],
        members: impl Iterator<Item = usize>,
        prefix_of: impl Fn(&Held) -> String,
        fields: impl Fn(&Held) -> Vec<String>,
        width: usize,
    ) -> Result<Vec<(usize, Vec<i64>)>, Error> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for index in members {
            let prefix = prefix_of(&held[index]);
            let tag = tag_in(&prefix).unwrap_or_default().to_owned();
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, members)) => members.push(index),
                None => groups.push((tag, vec![index])),
            }
        }
        let mut out = Vec::new();
        for (tag, members) in groups {
            let mut invocation = script.prepare_invoke();
            invocation.key(format!("{tag}:seq"));
            for &index in &members {
                for value in fields(&held[index]) {
                    invocation.arg(value);
                }
            }
            let reply: Vec<i64> = self.invoke(&invocation)?;
            for (&index, values) in members.iter().zip(reply.chunks(width)) {
                out.push((index, values.to_vec()));
            }
        }
        Ok(out)
    }

    /// The rest of a cluster claim that held limited jobs: their
    /// concurrency keys checked, one call per limits' slot, then the rate
    /// keys of those that took a slot (or have none), one call per rate
    /// keys' slot, a slot taken going back when the turn has not come; then
    /// one call in the queue's slot that claims or parks them; a slot taken
    /// for a job that is no longer held goes back. Returns the jobs
    /// claimed.
    pub(crate) fn settle_held(
        &self,
        bucket: u64,
        queue: &str,
        lease: Duration,
        held: &[Held],
    ) -> Result<Vec<Claimed>, Error> {
        self.list_limits(held);
        let mut took = vec![true; held.len()];
        let limited = (0..held.len()).filter(|&index| !held[index].prefix().is_empty());
        for (index, reply) in self.per_slot(
            &SCRIPTS.limit_take,
            held,
            limited,
            Held::prefix,
            Held::limit_check,
            1,
        )? {
            took[index] = reply.first() == Some(&1);
        }
        let mut turns = vec![0_i64; held.len()];
        let mut refused = Vec::new();
        let rated =
            (0..held.len()).filter(|&index| took[index] && !held[index].rate_prefix().is_empty());
        for (index, reply) in self.per_slot(
            &SCRIPTS.rate_take,
            held,
            rated.collect::<Vec<_>>().into_iter(),
            Held::rate_prefix,
            Held::rate_check,
            2,
        )? {
            turns[index] = reply.get(1).copied().unwrap_or(0);
            if reply.first() != Some(&1) {
                took[index] = false;
                let job = &held[index];
                if !job.prefix().is_empty() {
                    refused.push([job.prefix(), job.running_member(), String::new()]);
                }
            }
        }
        // a slot taken for a job whose turn has not come goes back
        self.apply_limits(&refused);
        let mut invocation = self.invocation(&SCRIPTS.settle, bucket);
        invocation.arg(queue).arg(crate::ms(lease));
        for ((job, &took), &turn) in held.iter().zip(&took).zip(&turns) {
            invocation
                .arg(job.seq)
                .arg(job.token)
                .arg(u8::from(took))
                .arg(job.rate_prefix())
                .arg(turn);
        }
        let (claimed, _) = claimed_of(bucket, self.invoke(&invocation)?);
        let lost: Vec<[String; 3]> = held
            .iter()
            .zip(&took)
            .filter(|&(job, &took)| {
                let id = JobId((bucket << SEQ_BITS) | job.seq);
                took && !job.prefix().is_empty() && !claimed.iter().any(|c| c.job.id == id)
            })
            .map(|(job, _)| [job.prefix(), job.running_member(), String::new()])
            .collect();
        self.apply_limits(&lost);
        Ok(claimed)
    }

    /// On a cluster, the turn of rate key `prefix` has come for a job of
    /// `queue` parked on it: the first job parked on the key (of any queue)
    /// is made ready in its slot, stale entries passed by, and the queue's
    /// next look at the key set, unless a claim has set it since `score`.
    fn promote_turn(
        &self,
        bucket: u64,
        queue: &str,
        prefix: &str,
        score: i64,
    ) -> Result<(), Error> {
        let Some(tag) = tag_in(prefix) else {
            return Ok(());
        };
        let mut again = 0;
        for _ in 0..100 {
            let mut invocation = SCRIPTS.rate_promote.prepare_invoke();
            invocation.key(format!("{tag}:seq")).arg(prefix);
            let (member, next): (String, i64) = self.invoke(&invocation)?;
            again = next;
            if member.is_empty() || self.ready_parked(&member)? {
                break;
            }
        }
        let mut invocation = self.invocation(&SCRIPTS.turn_set, bucket);
        invocation.arg(queue).arg(prefix).arg(score).arg(again);
        self.invoke::<i64>(&invocation)?;
        Ok(())
    }

    /// A claim script's reply made into the jobs claimed, with the limited
    /// jobs it held on a cluster settled.
    pub(crate) fn claimed_from(
        &self,
        bucket: u64,
        queue: &str,
        lease: Duration,
        reply: Vec<Value>,
    ) -> Result<Vec<Claimed>, Error> {
        let (mut claimed, held) = claimed_of(bucket, reply);
        let (turns, held): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| h.turn);
        if !held.is_empty() {
            claimed.extend(self.settle_held(bucket, queue, lease, &held)?);
        }
        // the jobs made ready are claimed by the next claim, which their
        // wake-up token brings
        for turn in turns {
            let prefix = turn.prefix();
            if let Err(error) = self.promote_turn(bucket, queue, &prefix, turn.token) {
                log::warn!("the turn of the rate limit {prefix} failed: {error}");
            }
        }
        Ok(claimed)
    }
}

/// A held job's entry of a claim script's reply: the number, the check
/// fields and the token.
pub(crate) fn held_of(seq: &Value, check: Value, attempt: &Value, token: &Value) -> Held {
    Held {
        seq: u64::try_from(int(seq)).unwrap_or(0),
        token: int(token),
        check: array(check),
        turn: int(attempt) == -2,
    }
}
