//! outband's reliability suite.
//!
//! The scenarios live in `tests/`; each ends by printing one [`Summary`]
//! line and asserting that nothing was lost and that duplicates stay within
//! the scenario's bound.
//!
//! | module | what it holds |
//! |---|---|
//! | [`servers`] | a queue of a scenario's own on each backend; private Redis, PostgreSQL and MariaDB servers to stop and start |
//! | [`malformed`] | malformed job records, written straight into a backend's storage |
//! | [`fuzz`] | the decoding entry points of the fuzz targets in `fuzz/` and of `tests/fuzz_corpus.rs` |
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `servers` | yes | [`servers`] and [`malformed`], with the SQL and Redis backends; the fuzz targets build without it |

#[cfg(feature = "servers")]
pub mod scenario;
#[cfg(feature = "servers")]
pub mod sink;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

pub mod fuzz;
#[cfg(feature = "servers")]
pub mod malformed;
#[cfg(feature = "servers")]
pub mod servers;

/// What a scenario counted at its end, printed as
/// `jobs=N done=N lost=N duplicates=N dead=N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Jobs the producers had acknowledged.
    pub jobs: u64,
    /// Jobs that ran to completion at least once.
    pub done: u64,
    /// Acknowledged jobs that neither ran nor ended in `dead`.
    pub lost: u64,
    /// Extra runs beyond the first, over all jobs.
    pub duplicates: u64,
    /// Jobs that ended in the dead-letter state.
    pub dead: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Summary {
            jobs,
            done,
            lost,
            duplicates,
            dead,
        } = self;
        write!(
            f,
            "jobs={jobs} done={done} lost={lost} duplicates={duplicates} dead={dead}"
        )
    }
}

impl Summary {
    /// Prints the summary line, then panics if a job was lost or if there
    /// were more than `max_duplicates` extra runs.
    #[track_caller]
    pub fn check(&self, scenario: &str, max_duplicates: u64) {
        println!("{scenario}: {self}");
        assert_eq!(self.lost, 0, "{scenario}: jobs were lost: {self}");
        assert!(
            self.duplicates <= max_duplicates,
            "{scenario}: {} duplicates, bound {max_duplicates}: {self}",
            self.duplicates
        );
    }
}

/// How often each job ran, by its number, for the scenarios whose consumer
/// runs in the test process: its command records each run here.
#[derive(Debug, Default)]
pub struct RunCounts(Mutex<Option<HashMap<u64, u32>>>);

impl RunCounts {
    /// No runs yet; usable in a `static`.
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Counts one run of job `n`.
    pub fn record(&self, n: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .entry(n)
            .or_default() += 1;
    }

    /// How often job `n` ran.
    pub fn runs_of(&self, n: u64) -> u32 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|runs| runs.get(&n).copied())
            .unwrap_or(0)
    }
}
