//! What this process's processors and enqueues report as they go, for
//! metrics: claims and their latency, each attempt's end and run time,
//! enqueues and their latency.
//!
//! One [`Observer`] is installed for the whole process, as a logger is
//! with [`log::set_logger`]: processors and the enqueue paths of generated
//! functions call it wherever they run, with no handle to pass around.
//! Nothing is reported until one is installed, and then a report is a
//! method call: an observer keeps its work short (counters, histograms)
//! and never calls the backend. `outband-web`'s metrics are one.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use outband::observe::{self, Attempt, Observer};
//!
//! #[derive(Default)]
//! struct Count(AtomicU64);
//!
//! impl Observer for Count {
//!     fn attempt_ended(&self, _attempt: &Attempt<'_>) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let installed = observe::set_observer(Arc::new(Count::default()));
//! assert!(installed.is_ok());
//! ```

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How an attempt ended, as its processor settled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptEnd {
    /// It succeeded.
    Done,
    /// It failed and will run again.
    Retried,
    /// It failed for good: the job is a dead letter.
    Dead,
    /// It was handed back without counting (a cancelled job, a shutdown).
    Released,
    /// Its lease had been lost, so its outcome was discarded.
    LeaseLost,
}

impl AttemptEnd {
    /// Whether the attempt failed: retried or dead.
    pub const fn failed(self) -> bool {
        matches!(self, Self::Retried | Self::Dead)
    }

    /// A lowercase name, for labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retried => "retried",
            Self::Dead => "dead",
            Self::Released => "released",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// One attempt that ended in a processor of this process.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Attempt<'a> {
    /// The job's command.
    pub command: &'a str,
    /// The job's queue.
    pub queue: &'a str,
    /// How it ended.
    pub end: AttemptEnd,
    /// How long the command ran.
    pub run_time: Duration,
}

/// Receives what this process's processors and enqueues report. Every
/// method does nothing unless overridden.
pub trait Observer: Send + Sync + 'static {
    /// A processor's claim on `queue` returned `jobs` jobs after `took`.
    fn claimed(&self, queue: &str, jobs: usize, took: Duration) {
        let _ = (queue, jobs, took);
    }

    /// An attempt ended and its outcome was sent to the backend.
    fn attempt_ended(&self, attempt: &Attempt<'_>) {
        let _ = attempt;
    }

    /// An enqueue of `jobs` jobs (one call, awaited or not) returned after
    /// `took`, having stored them (`ok`) or failed.
    fn enqueued(&self, jobs: usize, took: Duration, ok: bool) {
        let _ = (jobs, took, ok);
    }
}

static OBSERVER: OnceLock<Arc<dyn Observer>> = OnceLock::new();

/// Installs `observer` for the whole process; it can be installed once.
///
/// # Errors
/// Gives `observer` back when one was installed already.
pub fn set_observer(observer: Arc<dyn Observer>) -> Result<(), Arc<dyn Observer>> {
    let mut given = Some(observer);
    OBSERVER.get_or_init(|| given.take().expect("taken once"));
    given.map_or(Ok(()), Err)
}

/// The installed observer, if any.
pub fn observer() -> Option<&'static dyn Observer> {
    OBSERVER.get().map(|observer| &**observer)
}

/// Times an enqueue of `jobs` jobs, reporting it to the observer.
pub(crate) fn enqueue<T, E>(jobs: usize, store: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let Some(observer) = observer() else {
        return store();
    };
    let started = Instant::now();
    let stored = store();
    observer.enqueued(jobs, started.elapsed(), stored.is_ok());
    stored
}

/// [`enqueue`] for an awaited enqueue.
pub(crate) async fn enqueue_async<T, E>(
    jobs: usize,
    store: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let Some(observer) = observer() else {
        return store.await;
    };
    let started = Instant::now();
    let stored = store.await;
    observer.enqueued(jobs, started.elapsed(), stored.is_ok());
    stored
}
