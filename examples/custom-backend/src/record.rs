//! The job file: one JSON document per job, readable with `cat`.
//!
//! A record holds everything about a job except its state: the state is the
//! directory the file sits in (`pending/`, `running/`, `done/`, `dead/`,
//! `cancelled/`), so that changing state is one `rename` and can never leave
//! a job in two states. Times are nanoseconds since the Unix epoch (times
//! before it are stored as the epoch); bytes are lowercase hex.

use std::time::{Duration, SystemTime};

use outband::{Concurrency, Job, JobId, JobState, Progress, RateLimit};
use serde::{Deserialize, Serialize};

/// One job as stored in its file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) command: String,
    /// The encoded arguments, in hex.
    pub(crate) args: String,
    pub(crate) queue: String,
    pub(crate) key: Option<String>,
    pub(crate) priority: i16,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) run_at: u64,
    pub(crate) enqueued_at: u64,
    pub(crate) started_at: Option<u64>,
    pub(crate) finished_at: Option<u64>,
    /// Nanoseconds the successful attempt ran.
    pub(crate) duration: Option<u64>,
    pub(crate) last_error: Option<String>,
    /// The encoded result, in hex.
    pub(crate) result: Option<String>,
    /// How far the latest attempt got: the fraction done and the note.
    /// (`default`: files written before it was kept still read.)
    #[serde(default)]
    pub(crate) progress: Option<(f32, String)>,
    /// The job's own timeout, in milliseconds.
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
    /// The live lease, while the file is in `running/`.
    pub(crate) lease: Option<LeaseRecord>,
    /// Why the job was cancelled while it ran, if it was: the request its
    /// worker hears of at its heartbeats, and the reason the job ends
    /// `cancelled` with. Only ever set while the file is in `running/`.
    /// (`default`: files written before it was kept still read.)
    #[serde(default)]
    pub(crate) cancel: Option<String>,
    /// The concurrency limit: its key and how many jobs holding it run at
    /// once. (`default`: files written before it was kept still read.)
    #[serde(default)]
    pub(crate) concurrency: Option<(String, u32)>,
    /// The rate limit: its key, how many jobs holding it start per period,
    /// and the period in milliseconds. (`default`: as above.)
    #[serde(default)]
    pub(crate) rate: Option<(String, u32, u64)>,
}

/// The lease of a running job: the fencing token and the deadline.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    pub(crate) token: u64,
    pub(crate) deadline: u64,
}

impl Record {
    /// The job this record describes, in `state`.
    pub(crate) fn to_job(&self, state: JobState) -> Result<Job, String> {
        // `Job` may grow fields: start from `Job::new` and set each one kept
        let mut job = Job::new(JobId(self.id), self.command.clone(), from_hex(&self.args)?);
        job.queue = self.queue.clone();
        job.key = self.key.clone();
        job.priority = self.priority;
        job.attempt = self.attempt;
        job.max_attempts = self.max_attempts;
        job.state = state;
        job.run_at = to_time(self.run_at);
        job.enqueued_at = to_time(self.enqueued_at);
        job.started_at = self.started_at.map(to_time);
        job.finished_at = self.finished_at.map(to_time);
        job.duration = self.duration.map(Duration::from_nanos);
        job.last_error = self.last_error.clone();
        job.result = self.result.as_deref().map(from_hex).transpose()?;
        job.progress = self
            .progress
            .as_ref()
            .map(|(fraction, note)| Progress::new(*fraction, note.clone()));
        job.timeout = self.timeout_ms.map(Duration::from_millis);
        job.concurrency = self
            .concurrency
            .as_ref()
            .map(|(key, max)| Concurrency::new(key.clone(), *max));
        job.rate = self.rate_limit();
        Ok(job)
    }

    /// The record of `job`, held under `lease` while it is `running`; the
    /// state is not part of it (see the module docs), and neither is a
    /// cancel request, which a `Job` does not hold: whoever rebuilds a
    /// running job's record from its `Job` has settled the request first.
    pub(crate) fn of(job: &Job, lease: Option<LeaseRecord>) -> Self {
        Self {
            id: job.id.0,
            command: job.command.clone(),
            args: to_hex(&job.args),
            queue: job.queue.clone(),
            key: job.key.clone(),
            priority: job.priority,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            run_at: from_time(job.run_at),
            enqueued_at: from_time(job.enqueued_at),
            started_at: job.started_at.map(from_time),
            finished_at: job.finished_at.map(from_time),
            duration: job.duration.map(from_duration),
            last_error: job.last_error.clone(),
            result: job.result.as_deref().map(to_hex),
            progress: job
                .progress
                .as_ref()
                .map(|progress| (progress.fraction, progress.note.clone())),
            timeout_ms: job
                .timeout
                .map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
            lease,
            cancel: None,
            concurrency: job
                .concurrency
                .as_ref()
                .map(|limit| (limit.key.clone(), limit.max)),
            rate: job.rate.as_ref().map(|rate| {
                let millis = u64::try_from(rate.per.as_millis()).unwrap_or(u64::MAX);
                (rate.key.clone(), rate.max, millis)
            }),
        }
    }

    /// The rate limit, as outband gives it.
    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        self.rate.as_ref().map(|(key, max, millis)| {
            RateLimit::new(key.clone(), *max, Duration::from_millis(*millis))
        })
    }

    /// The lease deadline; a running record without a lease (left by a
    /// crash) counts as expired long ago.
    pub(crate) fn deadline(&self) -> u64 {
        self.lease.map_or(0, |lease| lease.deadline)
    }
}

/// A time as stored: nanoseconds since the epoch, saturating at both ends.
pub(crate) fn from_time(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// A stored time back as a `SystemTime`.
pub(crate) fn to_time(nanos: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// A duration as stored, in nanoseconds, saturating.
pub(crate) fn from_duration(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Bytes as lowercase hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Hex back to bytes.
pub(crate) fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd-length hex string of {} digits", hex.len()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| {
            hex.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex at offset {at}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("é0").is_err());
    }

    #[test]
    fn a_job_round_trips_through_its_record() {
        let now = SystemTime::now();
        let mut job = outband::backend::fate::new_job(
            outband::NewJob::new("c", vec![0, 255])
                .key("k")
                .concurrency(Concurrency::new("c", 2))
                .rate(RateLimit::new("c", 5, Duration::from_secs(60))),
            JobId(3),
            now,
        );
        job.duration = Some(Duration::from_nanos(5));
        job.result = Some(vec![9]);
        job.last_error = Some("e".into());
        let back = Record::of(&job, None).to_job(JobState::Pending).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn times_round_trip_to_the_nanosecond() {
        let now = SystemTime::now();
        assert_eq!(to_time(from_time(now)), now);
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(from_time(before_epoch), 0);
    }
}
