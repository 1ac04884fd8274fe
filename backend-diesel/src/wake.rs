//! Wake-ups for the databases without `LISTEN`: SQLite and MySQL/MariaDB.
//!
//! Every [`DatabaseQueue`](crate::DatabaseQueue) of this process opened on
//! one database (and, on MySQL, one table prefix) shares one [`Wake`],
//! through a registry keyed by the database. What makes jobs ready through
//! any of them (an enqueue, a retried dead job, a released job, recovery's
//! requeue, a resume) signals it once committed, so a waiter in the same
//! process returns at once. Commits from other processes reach it another
//! way:
//!
//! - **SQLite file**: a watch (inotify on Linux) on the file's directory
//!   signals when the write-ahead log (`<file>-wal`) or the file itself is
//!   written. Set up by the first wait, one per file and process, shared by
//!   every waiter. If it cannot be set up, a warning is logged once and
//!   waiters sleep their whole timeout.
//! - **MySQL/MariaDB**: nothing can push, so a waiter never sleeps longer
//!   than [`MYSQL_POLL`] at a time, and then asks whether a job is ready
//!   (one indexed read per queue), returning when one is.
//!
//! # No commit is missed between the claim and the wait
//!
//! A consumer claims, finds nothing, then waits. A commit that lands between
//! the two must still wake it. Each thread remembers the [`Signal`]'s
//! generation when its last wait returned: its next wait returns at once if
//! the generation has moved since, since that change may have come after
//! the claim looked. A commit whose signal came before that return is seen
//! by the claim that followed it: on SQLite the claim takes the write lock,
//! which the committing writer holds until its commit is visible; on MySQL
//! the in-process signal comes after the commit. The first wait of a thread
//! has no such mark: it reads the generation, then asks whether a job is
//! ready, and waits only if none is. That read takes no lock, so on SQLite
//! a commit of another process whose log writes were heard before it but
//! that is not yet visible to it is found only when the timeout ends: once
//! per thread, at its first wait.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use outband::Error;

/// How long a waiter on MySQL/MariaDB sleeps between two looks for a ready
/// job when nothing in its process signals it. A job enqueued by another
/// process starts about half of it later on average (its median latency is
/// about 25 ms plus one claim), for one indexed read per queue and interval
/// per idle consumer.
#[cfg(feature = "mysql")]
pub(crate) const MYSQL_POLL: Duration = Duration::from_millis(50);

/// How many reads [`Wake::settle`] makes at most, and the pause between two.
#[cfg(feature = "sqlite")]
const SETTLE_READS: u32 = 4;
#[cfg(feature = "sqlite")]
const SETTLE_PAUSE: Duration = Duration::from_micros(100);

/// A generation counter that waiters block on; every [`notify`](Self::notify)
/// moves it on.
struct Signal {
    /// Tells the signals apart in each thread's marks.
    id: u64,
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Signal {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            generation: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        *self.lock() += 1;
        self.changed.notify_all();
    }

    fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Blocks until the generation is not `seen` or `timeout` has passed,
    /// and returns the generation then.
    fn wait_past(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |generation| *generation == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

thread_local! {
    /// For each signal this thread has waited on: its generation when the
    /// thread's last wait returned.
    static SEEN: RefCell<HashMap<u64, u64>> = RefCell::new(HashMap::new());
}

fn seen_by_this_thread(signal: &Signal) -> Option<u64> {
    SEEN.with(|seen| seen.borrow().get(&signal.id).copied())
}

fn remember(signal: &Signal, generation: u64) {
    SEEN.with(|seen| seen.borrow_mut().insert(signal.id, generation));
}

/// How commits from other processes reach the waiters.
enum Across {
    /// No other process reaches the database (SQLite in memory).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Nothing,
    /// A SQLite file: a watch on it, set up by the first wait.
    #[cfg(feature = "sqlite")]
    Watch(watch::FileWatch),
    /// Polled: MySQL/MariaDB.
    #[cfg(feature = "mysql")]
    Poll(Duration),
}

/// What every queue of this process on one database shares: the signal its
/// enqueues send and its waiters block on.
pub(crate) struct Wake {
    signal: Arc<Signal>,
    across: Across,
}

/// The wakes of this process by database, while a queue holds them.
static REGISTRY: Mutex<Vec<(String, Weak<Wake>)>> = Mutex::new(Vec::new());

impl Wake {
    /// The wake of the SQLite file at `path`, shared by every queue of this
    /// process on that file, whatever its table prefix: the watch hears
    /// every commit to the file anyway.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite_file(path: &str) -> Arc<Self> {
        // the file exists once the first connection is made; two spellings
        // of one path name one file
        let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.into());
        let key = format!("sqlite:{}", file.display());
        Self::shared(key, |signal| Self {
            across: Across::Watch(watch::FileWatch::new(file, signal.clone())),
            signal,
        })
    }

    /// The wake of a SQLite database in memory: its queue's alone.
    #[cfg(feature = "sqlite")]
    pub(crate) fn memory() -> Arc<Self> {
        Arc::new(Self {
            signal: Arc::new(Signal::new()),
            across: Across::Nothing,
        })
    }

    /// The wake of the tables of `prefix` in the MySQL database at `url`.
    #[cfg(feature = "mysql")]
    pub(crate) fn mysql(url: &str, prefix: &str) -> Arc<Self> {
        Self::shared(format!("{url}#{prefix}"), |signal| Self {
            signal,
            across: Across::Poll(MYSQL_POLL),
        })
    }

    /// The registered wake of `key`, made by `make` if none is alive.
    fn shared(key: String, make: impl FnOnce(Arc<Signal>) -> Self) -> Arc<Self> {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        registry.retain(|(_, wake)| wake.strong_count() > 0);
        if let Some(wake) = registry
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, wake)| wake.upgrade())
        {
            return wake;
        }
        let wake = Arc::new(make(Arc::new(Signal::new())));
        registry.push((key, Arc::downgrade(&wake)));
        wake
    }

    /// Wakes every waiter of this process on the database: call it once jobs
    /// may have become ready and their transaction has committed.
    pub(crate) fn notify(&self) {
        self.signal.notify();
    }

    /// [`BaseQueue::wait`](outband::BaseQueue::wait): blocks until a job may
    /// be ready or `timeout` has passed. `ready` asks the database whether a
    /// job of the waited queues is ready now.
    pub(crate) fn wait(
        &self,
        timeout: Duration,
        mut ready: impl FnMut() -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let start = Instant::now();
        let poll = self.poll();
        let signal = &*self.signal;
        let seen = match seen_by_this_thread(signal) {
            Some(seen) => seen,
            None => {
                let now = signal.generation();
                if ready()? {
                    remember(signal, now);
                    return Ok(());
                }
                now
            }
        };
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let step = poll.map_or(left, |poll| poll.min(left));
            let generation = signal.wait_past(seen, step);
            if generation != seen {
                remember(signal, generation);
                self.settle(&mut ready);
                return Ok(());
            }
            if start.elapsed() >= timeout || (poll.is_some() && ready()?) {
                remember(signal, generation);
                return Ok(());
            }
        }
    }

    /// After a signal, gives a commit of another process a moment to become
    /// visible. The watch hears the commit's first write to the log, while
    /// the writer still holds the write lock; a claim made at once would
    /// find it taken, and SQLite's busy handler sleeps a whole millisecond
    /// or more before it tries again. A few reads, which take no lock, see
    /// the commit as soon as it is visible; then the claim finds the lock
    /// free. The claim decides whether a job is ready, not these reads: a
    /// signal for a write that readied nothing returns all the same, and so
    /// does one whose read failed.
    fn settle(&self, ready: &mut impl FnMut() -> Result<bool, Error>) {
        #[cfg(feature = "sqlite")]
        if matches!(self.across, Across::Watch(_)) {
            for _ in 0..SETTLE_READS {
                if ready().unwrap_or(true) {
                    break;
                }
                std::thread::sleep(SETTLE_PAUSE);
            }
        }
        let _ = ready;
    }

    /// How long a waiter sleeps at most before it looks for a ready job
    /// itself: `None` when commits from other processes wake it, or when
    /// nothing better than sleeping its whole timeout can be done.
    fn poll(&self) -> Option<Duration> {
        match &self.across {
            Across::Nothing => None,
            #[cfg(feature = "sqlite")]
            Across::Watch(watch) => {
                // set up by the first wait; without it, the timeout is the poll
                watch.start();
                None
            }
            #[cfg(feature = "mysql")]
            Across::Poll(every) => Some(*every),
        }
    }

    /// Whether a watch of the database file is set up and running.
    #[cfg(all(test, feature = "sqlite"))]
    fn watching(&self) -> bool {
        match &self.across {
            Across::Watch(watch) => watch.start(),
            _ => false,
        }
    }
}

#[cfg(feature = "sqlite")]
mod watch {
    //! The watch of a SQLite file's write-ahead log.

    use std::ffi::OsString;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, OnceLock};

    use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

    use super::Signal;

    /// A watch on the directory of a SQLite file, signalling `signal` when
    /// the file or its write-ahead log is written. The directory, not the
    /// log, is watched: SQLite deletes the log when the last connection
    /// closes and makes it anew with the next writer.
    pub(super) struct FileWatch {
        file: PathBuf,
        signal: Arc<Signal>,
        /// Set up by the first wait; `None` if that failed.
        watcher: OnceLock<Option<RecommendedWatcher>>,
    }

    impl FileWatch {
        pub(super) fn new(file: PathBuf, signal: Arc<Signal>) -> Self {
            Self {
                file,
                signal,
                watcher: OnceLock::new(),
            }
        }

        /// Sets the watch up on the first call; tells whether it runs.
        pub(super) fn start(&self) -> bool {
            self.watcher
                .get_or_init(|| match watch(&self.file, self.signal.clone()) {
                    Ok(watcher) => Some(watcher),
                    Err(error) => {
                        log::warn!(
                            "cannot watch {} for commits ({error}): a consumer finds the jobs \
                             of other processes only when its wait time has passed",
                            self.file.display()
                        );
                        None
                    }
                })
                .is_some()
        }
    }

    fn watch(file: &Path, signal: Arc<Signal>) -> notify::Result<RecommendedWatcher> {
        let dir = file
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = file
            .file_name()
            .map(OsString::from)
            .ok_or_else(|| notify::Error::generic("not a file name"))?;
        let mut wal = name.clone();
        wal.push("-wal");
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let wakes = match event {
                    // an error of the watch itself may hide a commit: wake, the
                    // claim that follows costs little
                    Err(_) => true,
                    Ok(event) => {
                        event.need_rescan()
                            || (matches!(event.kind, EventKind::Modify(_) | EventKind::Create(_))
                                && event.paths.iter().any(|path| {
                                    path.file_name()
                                        .is_some_and(|changed| changed == wal || changed == name)
                                }))
                    }
                };
                if wakes {
                    signal.notify();
                }
            })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alone() -> Wake {
        Wake {
            signal: Arc::new(Signal::new()),
            across: Across::Nothing,
        }
    }

    #[test]
    fn a_signal_after_the_last_return_makes_the_next_wait_return_at_once() {
        let wake = alone();
        // the first wait of a thread asks the database, then times out
        wake.wait(Duration::ZERO, || Ok(false)).unwrap();
        // as an enqueue between the consumer's claim and its next wait
        wake.notify();
        let start = Instant::now();
        wake.wait(Duration::from_secs(10), || unreachable!("not asked"))
            .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the signal sent before this wait wakes it"
        );
    }

    #[test]
    fn a_waiter_returns_when_signalled_by_another_thread() {
        let wake = alone();
        let waited = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let start = Instant::now();
                wake.wait(Duration::from_secs(10), || Ok(false)).unwrap();
                start.elapsed()
            });
            while !waiter.is_finished() {
                wake.notify();
                std::thread::sleep(Duration::from_millis(10));
            }
            waiter.join().unwrap()
        });
        assert!(waited < Duration::from_secs(10), "woken, not timed out");
    }

    #[test]
    fn a_first_wait_returns_at_once_when_a_job_is_ready() {
        let wake = alone();
        let start = Instant::now();
        wake.wait(Duration::from_secs(10), || Ok(true)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn queues_on_one_database_and_prefix_share_a_wake() {
        let a = Wake::mysql("mysql://h/db", "a_");
        assert!(Arc::ptr_eq(&a, &Wake::mysql("mysql://h/db", "a_")));
        assert!(!Arc::ptr_eq(&a, &Wake::mysql("mysql://h/db", "b_")));
        assert!(!Arc::ptr_eq(&a, &Wake::mysql("mysql://h/other", "a_")));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_sqlite_file_is_watched_once_for_every_spelling_of_its_path() {
        let dir = std::env::temp_dir().join(format!("outband-wake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("w.db");
        std::fs::write(&file, b"").unwrap();
        let a = Wake::sqlite_file(file.to_str().unwrap());
        let b = Wake::sqlite_file(&format!("{}/./w.db", dir.display()));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.watching(), "inotify is available here");
        std::fs::remove_dir_all(&dir).ok();
    }
}
