//! The consumer registry: who consumes from a backend, seen through the
//! backend itself.
//!
//! Each consumer process registers a [`ConsumerInfo`] with
//! [`BaseQueue::register_consumer`](crate::BaseQueue::register_consumer)
//! when it starts, registers it again on every heartbeat (every
//! [`CONSUMER_HEARTBEAT`], with [`CONSUMER_TTL`] as its time to live), and
//! unregisters on a clean stop. [`BaseQueue::consumers`](crate::BaseQueue::consumers)
//! lists them as [`Consumer`]s: alive while their last heartbeat is younger
//! than its ttl on the backend's clock, *gone* after that, and forgotten
//! once gone for [`CONSUMER_FORGET_AFTER`].

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::Error;

/// How long a consumer stays listed once it is gone (its last registration
/// outlived its ttl) before a backend removes it.
pub const CONSUMER_FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// How often a running processor registers its consumer again.
pub const CONSUMER_HEARTBEAT: Duration = Duration::from_secs(5);

/// The ttl a processor gives its registrations: several missed heartbeats,
/// so that a slow backend call does not make a live consumer look gone.
pub const CONSUMER_TTL: Duration = Duration::from_secs(30);

/// What a consumer process says of itself when it registers.
///
/// Backends that store it serialized use [`to_json`](Self::to_json) and
/// [`from_json`](Self::from_json), so that other tools can read it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsumerInfo {
    /// Unique per process run: host, pid and start time in milliseconds
    /// since the Unix epoch, as `web-1:4242:1765000000123` (a later
    /// millisecond for a second consumer started in the same one).
    pub id: String,
    /// The host's name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The queues it consumes from.
    pub queues: Vec<String>,
    /// How many OS threads run its sync jobs.
    pub threads: usize,
    /// How many async jobs it runs at once (0 if none).
    pub concurrency: usize,
    /// How many jobs were running at its last heartbeat.
    pub running: usize,
    /// When it started, on its own clock.
    pub started_at: SystemTime,
    /// The version of outband it runs.
    pub version: String,
}

impl ConsumerInfo {
    /// The info of this process, started now, consuming `queues` with
    /// `threads` threads for sync jobs and `concurrency` async slots, with
    /// no job running yet.
    pub fn this_process(
        queues: impl IntoIterator<Item = impl Into<String>>,
        threads: usize,
        concurrency: usize,
    ) -> Self {
        let host = host_name();
        let pid = std::process::id();
        let started_at = SystemTime::now();
        let millis = unique_millis(started_at);
        Self {
            id: format!("{host}:{pid}:{millis}"),
            host,
            pid,
            queues: queues.into_iter().map(Into::into).collect(),
            threads,
            concurrency,
            running: 0,
            started_at,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The info as JSON: the wire format of backends that store it as text.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self)
            .map_err(|error| Error::backend(format!("consumer info as JSON: {error}")))
    }

    /// The info read back from [`to_json`](Self::to_json)'s text; an
    /// [`Error::Backend`] when it is not such text.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text)
            .map_err(|error| Error::backend(format!("stored consumer info: {error}")))
    }
}

/// A registered consumer as the backend keeps it.
#[derive(Clone, Debug)]
pub struct Consumer {
    /// What it said of itself at its last registration.
    pub info: ConsumerInfo,
    /// When it last registered, on the backend's clock.
    pub seen_at: SystemTime,
    /// Whether its last registration's ttl has not passed yet, on the
    /// backend's clock; `false` is a consumer *gone*.
    pub alive: bool,
}

impl Consumer {
    /// For backends: a stored registration as listed at `now`, given when
    /// it was seen and when its ttl ends.
    pub fn at(
        info: ConsumerInfo,
        seen_at: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Self {
        Self {
            info,
            seen_at,
            alive: now < expires_at,
        }
    }

    /// For backends: whether a registration whose ttl ends at `expires_at`
    /// has been gone long enough at `now` to be removed.
    pub fn forgotten(expires_at: SystemTime, now: SystemTime) -> bool {
        expires_at + CONSUMER_FORGET_AFTER <= now
    }

    /// For backends: sorts a listing as [`BaseQueue::consumers`](crate::BaseQueue::consumers)
    /// returns it, alive first, then by start time, then by id.
    pub fn sort(consumers: &mut [Self]) {
        consumers.sort_by(|a, b| {
            (!a.alive, a.info.started_at, &a.info.id).cmp(&(
                !b.alive,
                b.info.started_at,
                &b.info.id,
            ))
        });
    }
}

/// `at` in milliseconds since the Unix epoch, made later than every value
/// it returned before, so that two consumers this process starts within one
/// millisecond (two processors) still get ids of their own.
fn unique_millis(at: SystemTime) -> u128 {
    static LAST: Mutex<u128> = Mutex::new(0);
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    *last = millis.max(*last + 1);
    *last
}

/// The host's name, as `uname` gives it, else `/etc/hostname`'s, else
/// `localhost`.
fn host_name() -> String {
    #[cfg(unix)]
    {
        let name = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        if !name.is_empty() {
            return name;
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_names_itself() {
        let info = ConsumerInfo::this_process(["a", "b"], 4, 16);
        assert_eq!(info.pid, std::process::id());
        assert!(!info.host.is_empty());
        assert!(info.id.starts_with(&format!("{}:{}:", info.host, info.pid)));
        assert_eq!(info.queues, ["a", "b"]);
        assert_eq!((info.threads, info.concurrency, info.running), (4, 16, 0));
        assert_eq!(
            ConsumerInfo::from_json(&info.to_json().expect("json")).expect("read"),
            info
        );
    }

    #[test]
    fn gone_consumers_are_forgotten_later() {
        let now = SystemTime::now();
        let expired = now - Duration::from_secs(1);
        let info = ConsumerInfo::this_process(["a"], 1, 0);
        assert!(!Consumer::at(info.clone(), expired, expired, now).alive);
        assert!(Consumer::at(info, now, now + CONSUMER_TTL, now).alive);
        assert!(!Consumer::forgotten(expired, now));
        assert!(Consumer::forgotten(now - CONSUMER_FORGET_AFTER, now));
    }
}
