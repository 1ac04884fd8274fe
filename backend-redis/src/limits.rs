//! Concurrency limits on a Redis Cluster, where a limit's keys (in the slot
//! of the concurrency key's own bucket) are on another node than the queue
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
//! first parked job ready in its own slot.

use std::time::Duration;

use outband::{Claimed, Error, JobId};
use redis::Value;

use crate::scripts::SCRIPTS;
use crate::{RedisQueue, SEQ_BITS, array, claimed_of, int, text};

/// A limited job a cluster claim held, as the claim script returned it.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) seq: u64,
    pub(crate) token: i64,
    /// The limit's key prefix, its max, the job's running member, its
    /// parked score and parked member.
    pub(crate) check: Vec<Value>,
}

impl Held {
    fn prefix(&self) -> String {
        self.check.first().map(text).unwrap_or_default()
    }

    fn running_member(&self) -> String {
        self.check.get(2).map(text).unwrap_or_default()
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
        let mut next = self.limit_step(prefix, running, parked, false)?;
        // stale entries (jobs claimed, cancelled or flushed since) are
        // passed by, a bounded number per change
        for _ in 0..100 {
            if next.is_empty() {
                break;
            }
            let ready = self.ready_parked(&next)?;
            next = self.limit_step(prefix, "", &next, !ready)?;
            if ready {
                break;
            }
        }
        Ok(())
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

    /// The rest of a cluster claim that held limited jobs: their keys
    /// checked, one call per limits' slot, then one call in the queue's
    /// slot that claims or parks them; a slot taken for a job that is no
    /// longer held goes back. Returns the jobs claimed.
    pub(crate) fn settle_held(
        &self,
        bucket: u64,
        queue: &str,
        lease: Duration,
        held: &[Held],
    ) -> Result<Vec<Claimed>, Error> {
        let mut took = vec![false; held.len()];
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, job) in held.iter().enumerate() {
            let prefix = job.prefix();
            let tag = tag_in(&prefix).unwrap_or_default().to_owned();
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, members)) => members.push(index),
                None => groups.push((tag, vec![index])),
            }
        }
        for (tag, members) in groups {
            let mut invocation = SCRIPTS.limit_take.prepare_invoke();
            invocation.key(format!("{tag}:seq"));
            for &index in &members {
                for value in &held[index].check {
                    invocation.arg(text(value));
                }
            }
            let reply: Vec<i64> = self.invoke(&invocation)?;
            for (&index, flag) in members.iter().zip(reply) {
                took[index] = flag == 1;
            }
        }
        let mut invocation = self.invocation(&SCRIPTS.settle, bucket);
        invocation.arg(queue).arg(crate::ms(lease));
        for (job, &took) in held.iter().zip(&took) {
            invocation.arg(job.seq).arg(job.token).arg(u8::from(took));
        }
        let (claimed, _) = claimed_of(bucket, self.invoke(&invocation)?);
        let lost: Vec<[String; 3]> = held
            .iter()
            .zip(&took)
            .filter(|&(job, &took)| {
                let id = JobId((bucket << SEQ_BITS) | job.seq);
                took && !claimed.iter().any(|c| c.job.id == id)
            })
            .map(|(job, _)| [job.prefix(), job.running_member(), String::new()])
            .collect();
        self.apply_limits(&lost);
        Ok(claimed)
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
        if !held.is_empty() {
            claimed.extend(self.settle_held(bucket, queue, lease, &held)?);
        }
        Ok(claimed)
    }
}

/// A held job's entry of a claim script's reply: the number, the check
/// fields and the token.
pub(crate) fn held_of(seq: &Value, check: Value, token: &Value) -> Held {
    Held {
        seq: u64::try_from(int(seq)).unwrap_or(0),
        token: int(token),
        check: array(check),
    }
}
