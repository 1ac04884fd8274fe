//! Unique jobs: a job enqueued with a [`Unique`] key is stored only if no
//! job holding that key is still in the key's scope
//! ([`UniqueUntil`]); otherwise the enqueue gives the holder's id back, as a
//! duplicate ([`Enqueued::duplicate`]). See
//! [`BaseQueue::enqueue_unique`](crate::BaseQueue::enqueue_unique) and the
//! `unique` option of [`queue_command`](crate::queue_command).
//!
//! ```
//! use outband::{BaseQueue, MemoryQueue, NewJob, Unique, UniqueUntil};
//!
//! let backend = MemoryQueue::new();
//! let job = || {
//!     NewJob::new("app::sync_account", vec![1])
//!         .unique(Unique::new("app::sync_account:42", UniqueUntil::Finished))
//! };
//! let first = backend.enqueue_unique(job())?;
//! let again = backend.enqueue_unique(job())?;
//! assert!(!first.duplicate && again.duplicate);
//! assert_eq!(again.id, first.id);
//! # Ok::<(), outband::Error>(())
//! ```

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::{JobId, JobState};

/// The longest unique key a backend must store, in bytes.
pub const MAX_UNIQUE_KEY: usize = 512;

/// A job's unique key and how long the key is held: see
/// [`BaseQueue::enqueue_unique`](crate::BaseQueue::enqueue_unique).
///
/// Keys are global to the backend, across queues: the macro builds them as
/// `command:…`, so that two commands never share one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unique {
    /// The key; at most [`MAX_UNIQUE_KEY`] bytes.
    pub key: String,
    /// How long the job that took the key holds it.
    pub until: UniqueUntil,
}

impl Unique {
    /// A unique key held `until`.
    pub fn new(key: impl Into<String>, until: UniqueUntil) -> Self {
        Self {
            key: key.into(),
            until,
        }
    }

    /// The key of a command's job unique by all its arguments: the command's
    /// name and a SHA-256 digest of the encoded arguments, so that equal
    /// arguments give equal keys (the encoding is deterministic for a value
    /// that serializes the same way each time, which a `HashMap` does not).
    pub fn of_args(command: &str, args: &[u8]) -> String {
        let digest = Sha256::digest(args);
        let mut key = String::with_capacity(command.len() + 1 + 64);
        key.push_str(command);
        key.push(':');
        for byte in digest {
            key.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            key.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        key
    }

    /// The key of a command's job unique by one value (an argument, or a
    /// constant): the command's name and the value.
    pub fn of_value(command: &str, value: &impl std::fmt::Display) -> String {
        format!("{command}:{value}")
    }
}

/// How long the job that took a unique key holds it. A job that ends `dead`
/// or `cancelled` gives its key up at once, whatever the scope, so that a
/// failed job may be enqueued again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UniqueUntil {
    /// While the job is `pending` (scheduled or waiting included): once it
    /// starts, the same job may be enqueued again (huey's and Sidekiq's
    /// `until_executing`).
    Started,
    /// While the job is `pending` or `running` (Sidekiq's
    /// `until_executed`, the default of `#[queue_command(unique)]`).
    Finished,
    /// While the job is `pending` or `running`, and for the given window after
    /// it ended `done` (Oban's `unique: [period: …]`).
    FinishedFor(Duration),
}

impl UniqueUntil {
    /// Whether a job in `state`, which ended at `finished_at` if it did,
    /// still holds its key at `now` (all on the backend's clock): the one
    /// rule every backend applies.
    pub fn holds(self, state: JobState, finished_at: Option<SystemTime>, now: SystemTime) -> bool {
        match (self, state) {
            (_, JobState::Pending) => true,
            (Self::Finished | Self::FinishedFor(_), JobState::Running) => true,
            (Self::FinishedFor(window), JobState::Done) => {
                finished_at.is_some_and(|at| at + window > now)
            }
            _ => false,
        }
    }
}

/// What a command's `unique` option says, as
/// [`Command::unique`](crate::Command::unique) keeps it: what the key is
/// made of, and how long it is held.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UniqueSpec {
    /// What the key is made of.
    pub by: UniqueBy,
    /// How long a job holds it.
    pub until: UniqueUntil,
}

/// What a command's unique key is made of.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UniqueBy {
    /// All the arguments: `unique`.
    Args,
    /// One argument's value, by its name: `unique(by = arg)`.
    Arg(&'static str),
    /// A constant: `unique(key = "…")`, one job of the command at a time.
    Key(&'static str),
}

/// What [`enqueue_unique`](crate::BaseQueue::enqueue_unique) did: the id of
/// the job that holds the key, and whether that is an earlier job (the
/// enqueue was a duplicate, nothing was stored) rather than the new one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Enqueued {
    /// The new job's id, or the earlier job's for a duplicate.
    pub id: JobId,
    /// Nothing was stored: a job holding the key is still in its scope.
    pub duplicate: bool,
}

impl Enqueued {
    /// A new job was stored.
    pub const fn new(id: JobId) -> Self {
        Self {
            id,
            duplicate: false,
        }
    }

    /// The key was held by job `id`; nothing was stored.
    pub const fn duplicate_of(id: JobId) -> Self {
        Self {
            id,
            duplicate: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scope_holds_its_states() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let ended = Some(now - Duration::from_secs(10));
        let window = UniqueUntil::FinishedFor(Duration::from_secs(60));
        let short = UniqueUntil::FinishedFor(Duration::from_secs(5));
        for until in [UniqueUntil::Started, UniqueUntil::Finished, window] {
            assert!(until.holds(JobState::Pending, None, now), "{until:?}");
            for state in [JobState::Dead, JobState::Cancelled] {
                assert!(!until.holds(state, ended, now), "{until:?} {state}");
            }
        }
        assert!(!UniqueUntil::Started.holds(JobState::Running, None, now));
        assert!(UniqueUntil::Finished.holds(JobState::Running, None, now));
        assert!(!UniqueUntil::Finished.holds(JobState::Done, ended, now));
        assert!(window.holds(JobState::Running, None, now));
        assert!(window.holds(JobState::Done, ended, now));
        assert!(!short.holds(JobState::Done, ended, now));
    }

    #[test]
    fn keys_of_arguments_differ_by_command_and_arguments() {
        let key = Unique::of_args("app::a", &[1, 2]);
        assert_eq!(key.len(), "app::a:".len() + 64);
        assert_eq!(key, Unique::of_args("app::a", &[1, 2]));
        assert_ne!(key, Unique::of_args("app::a", &[1, 3]));
        assert_ne!(key, Unique::of_args("app::b", &[1, 2]));
        assert!(key.starts_with("app::a:"));
        assert_eq!(Unique::of_value("app::a", &42), "app::a:42");
    }
}
