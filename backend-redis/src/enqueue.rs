//! What an enqueue sends, built once for the sync
//! [`enqueue_many`](outband::BaseQueue::enqueue_many) and the awaited
//! [`enqueue_many_async`](outband::AsyncEnqueue::enqueue_many_async), so that
//! the two store the same records under the same ids: the jobs validated,
//! the `SADD` of queue names this handle has not registered, and one script
//! call, whose reply gives the ids.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::PoisonError;
use std::time::UNIX_EPOCH;

use outband::backend::fate::{self, whole_millis};
use outband::{Error, JobId, NewJob, When};
use redis::{ScriptInvocation, Value};

use crate::scripts::SCRIPTS;
use crate::{RedisQueue, SEQ_BITS, bucket_of, ms};

/// An enqueue ready to send, built once for the sync and the awaited path
/// alike: the queues to register, then one script call.
pub(crate) struct EnqueueCall {
    /// Queue names to note as registered once `register` succeeded.
    pub(crate) new_queues: Vec<String>,
    /// The `SADD` to `namespace:queues` of the queues this handle has not
    /// registered yet, sent before the script.
    pub(crate) register: Option<redis::Cmd>,
    pub(crate) script: ScriptInvocation<'static>,
    pub(crate) ids: IdsOf,
}

/// How the enqueue scripts' replies become the job ids.
pub(crate) enum IdsOf {
    /// The one-job script's reply: the job number in `bucket`.
    One { bucket: u64 },
    /// The enqueue script's reply: the first new job number of each group of
    /// `groups` (a bucket and the indexes of its jobs), for `len` jobs.
    Batch {
        groups: Vec<(u64, Vec<usize>)>,
        len: usize,
    },
}

impl IdsOf {
    /// The ids of the jobs, in the order given, from the script's `reply`.
    pub(crate) fn of(&self, reply: Value) -> Result<Vec<JobId>, Error> {
        let wrong = |error| Error::backend(format!("the enqueue script's reply: {error}"));
        match self {
            Self::One { bucket } => {
                let seq: u64 = redis::from_redis_value(reply).map_err(wrong)?;
                Ok(vec![JobId((bucket << SEQ_BITS) | seq)])
            }
            Self::Batch { groups, len } => {
                let firsts: Vec<u64> = redis::from_redis_value(reply).map_err(wrong)?;
                if firsts.len() != groups.len() {
                    return Err(Error::backend("the enqueue script returned a wrong count"));
                }
                let mut ids = vec![JobId(0); *len];
                for ((bucket, members), first) in groups.iter().zip(firsts) {
                    for (offset, &index) in members.iter().enumerate() {
                        ids[index] = JobId((bucket << SEQ_BITS) | (first + offset as u64));
                    }
                }
                Ok(ids)
            }
        }
    }
}

impl RedisQueue {
    /// A job with no ordering key, ready at once, by the one-job script:
    /// one round trip, and less work in Redis than a batch of one.
    fn enqueue_one(&self, job: &NewJob) -> (ScriptInvocation<'static>, IdsOf) {
        let bucket = bucket_of(&job.queue);
        let mut invocation = self.invocation(&SCRIPTS.enqueue_one, bucket);
        invocation
            .arg(&job.queue)
            .arg(&job.command)
            .arg(&job.args[..])
            .arg(job.priority)
            .arg(job.max_attempts)
            .arg(timeout_arg(job));
        (invocation, IdsOf::One { bucket })
    }

    /// Of `queues`, those this handle has not yet added to
    /// `namespace:queues`, each once.
    fn unregistered<'q>(&self, queues: impl IntoIterator<Item = &'q str>) -> Vec<String> {
        let registered = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queues
            .into_iter()
            .filter(|q| !registered.contains(*q))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Notes queue names as added to `namespace:queues`.
    pub(crate) fn registered(&self, queues: Vec<String>) {
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(queues);
    }

    /// An enqueue of `jobs`, validated as a batch (no unique job among
    /// them) and ready to send; `None` when there is nothing to store. The
    /// sync and the awaited enqueue both send it.
    pub(crate) fn enqueue_call(&self, jobs: &[NewJob]) -> Result<Option<EnqueueCall>, Error> {
        fate::validate_batch(jobs)?;
        Ok(self.call_of(jobs))
    }

    /// An enqueue of `jobs`, already validated, that ignores their unique
    /// keys: what [`enqueue_call`](Self::enqueue_call) sends, and on a
    /// cluster the store step of a unique enqueue.
    pub(crate) fn call_of(&self, jobs: &[NewJob]) -> Option<EnqueueCall> {
        if jobs.is_empty() {
            return None;
        }
        let (new_queues, register) = self.registration(jobs);
        let (script, ids) = match jobs {
            [job]
                if job.key.is_none()
                    && job.concurrency.is_none()
                    && job.rate.is_none()
                    && job.when == When::Now =>
            {
                self.enqueue_one(job)
            }
            _ => self.enqueue_batch(jobs),
        };
        Some(EnqueueCall {
            new_queues,
            register,
            script,
            ids,
        })
    }

    /// The queues of `jobs` this handle has not registered, and the `SADD`
    /// to `namespace:queues` that registers them, if there are any.
    pub(crate) fn registration(&self, jobs: &[NewJob]) -> (Vec<String>, Option<redis::Cmd>) {
        let new_queues = self.unregistered(jobs.iter().map(|j| j.queue.as_str()));
        let register = (!new_queues.is_empty()).then(|| {
            let mut sadd = redis::cmd("SADD");
            sadd.arg(self.queues_key()).arg(&new_queues);
            sadd
        });
        (new_queues, register)
    }

    /// Any batch, by the enqueue script: one call for all buckets, each
    /// bucket's jobs keeping the batch's order.
    fn enqueue_batch(&self, jobs: &[NewJob]) -> (ScriptInvocation<'static>, IdsOf) {
        let mut invocation = SCRIPTS.enqueue.prepare_invoke();
        let ids = self.batch_args(&mut invocation, jobs);
        (invocation, ids)
    }

    /// Appends the enqueue script's keys and arguments for `jobs` to
    /// `invocation`, which may be a script that runs the enqueue script
    /// inside it (the unique enqueue's); returns how its reply gives the ids.
    pub(crate) fn batch_args(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        jobs: &[NewJob],
    ) -> IdsOf {
        let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            let bucket = bucket_of(&job.queue);
            match groups.iter_mut().find(|(b, _)| *b == bucket) {
                Some((_, members)) => members.push(index),
                None => groups.push((bucket, vec![index])),
            }
        }
        invocation.arg(groups.len());
        for (bucket, members) in &groups {
            let runs: Vec<&[usize]> = members
                .chunk_by(|&a, &b| alike(&jobs[a], &jobs[b]))
                .collect();
            invocation
                .key(self.seq_key(*bucket))
                .arg(self.tag(*bucket))
                .arg(members.len())
                .arg(runs.len());
            for run in runs {
                let job = &jobs[run[0]];
                invocation.arg(&job.queue).arg(&job.command);
                match &job.key {
                    Some(key) => invocation.arg(format!("1{key}")),
                    None => invocation.arg("0"),
                };
                invocation
                    .arg(job.priority)
                    .arg(job.max_attempts)
                    .arg(when_arg(job.when).as_ref())
                    .arg(timeout_arg(job));
                match &job.concurrency {
                    Some(limit) => {
                        invocation.arg(format!("{}:{}", limit.max, self.limit_base(&limit.key)))
                    }
                    None => invocation.arg("0"),
                };
                match &job.rate {
                    Some(rate) => invocation.arg(format!(
                        "{}:{}:{}",
                        rate.max,
                        crate::micros(rate.per),
                        self.rate_base(&rate.key)
                    )),
                    None => invocation.arg("0"),
                };
                invocation.arg(run.len());
                for &index in run {
                    invocation.arg(&jobs[index].args[..]);
                }
            }
        }
        IdsOf::Batch {
            groups,
            len: jobs.len(),
        }
    }
}

/// Whether two jobs differ in their arguments alone, so that the enqueue
/// script takes them as one run.
fn alike(a: &NewJob, b: &NewJob) -> bool {
    a.queue == b.queue
        && a.command == b.command
        && a.key == b.key
        && a.priority == b.priority
        && a.max_attempts == b.max_attempts
        && a.when == b.when
        && a.timeout == b.timeout
        && a.concurrency == b.concurrency
        && a.rate == b.rate
}

/// The enqueue scripts' timeout argument: whole milliseconds, `0` for none
/// (`NewJob::validate` refuses a timeout under a millisecond, so `0` is never
/// a timeout).
fn timeout_arg(job: &NewJob) -> u64 {
    job.timeout.map_or(0, |timeout| ms(whole_millis(timeout)))
}

/// The enqueue script's `when` argument: `n`, `a<ms>` or `d<ms>`.
fn when_arg(when: When) -> Cow<'static, str> {
    match when {
        When::Now => Cow::Borrowed("n"),
        When::At(at) => Cow::Owned(format!(
            "a{}",
            at.duration_since(UNIX_EPOCH).map(ms).unwrap_or_default()
        )),
        When::After(delay) => Cow::Owned(format!("d{}", ms(delay))),
    }
}
