//! The blocking pool: a bounded set of threads, owned by outband, on which
//! awaited enqueues call a backend that has only the sync contract, so that
//! the caller's async runtime never waits on a round trip.
//!
//! Threads start as work arrives, up to [`MAX_THREADS`], and end after
//! [`IDLE`] without work; the work waits in a queue when all are busy. The
//! future of a call is independent of any runtime (a [`oneshot`] channel):
//! it can be awaited on tokio, async-std or a bare `block_on`.
//!
//! Work handed to the pool runs to its end even if the future awaiting it
//! is dropped: an enqueue the pool has started is not abandoned half-way.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// The most threads the pool runs at once: enough for the round trips of
/// many concurrent enqueues to overlap, few enough not to outnumber the
/// connections a backend's own pool has by much.
pub(crate) const MAX_THREADS: usize = 32;

/// How long a thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(10);

type Work = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Work>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn submit(&'static self, work: Work) {
        let mut state = self.lock();
        state.queue.push_back(work);
        if state.idle > 0 {
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.threads < MAX_THREADS {
            state.threads += 1;
            let n = state.threads;
            drop(state);
            let spawned = std::thread::Builder::new()
                .name(format!("outband-blocking-{n}"))
                .spawn(move || self.serve());
            if let Err(error) = spawned {
                // the queued work waits for a thread that exists
                log::error!("starting a blocking-pool thread failed: {error}");
                self.lock().threads -= 1;
            }
        }
    }

    fn serve(&self) {
        let mut state = self.lock();
        loop {
            if let Some(work) = state.queue.pop_front() {
                drop(state);
                work();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(state, IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}

/// Hands `work` to the blocking pool now, and returns its result when the
/// future is awaited.
///
/// # Panics
///
/// The future panics if `work` panicked, passing its panic on.
pub(crate) fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = T> + Send {
    let (sender, receiver) = oneshot::channel();
    pool().submit(Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // the caller may have stopped waiting: the work is done either way
        let _ = sender.send(result);
    }));
    async move {
        match receiver.await {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // the pool never drops work without running it
            Err(_) => unreachable!("the blocking pool dropped a call"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn work_runs_on_another_thread_and_returns_its_value() {
        let caller = std::thread::current().id();
        let (value, thread) =
            futures_lite::future::block_on(run(move || (6 * 7, std::thread::current().id())));
        assert_eq!(value, 42);
        assert_ne!(thread, caller);
    }

    #[test]
    fn no_more_threads_run_at_once_than_the_bound() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls = (0..MAX_THREADS * 3).map(|_| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        let calls: Vec<_> = calls.collect();
        for call in calls {
            futures_lite::future::block_on(call);
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most <= MAX_THREADS, "{most} ran at once");
        assert!(most > 1, "the calls overlapped");
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let result = std::panic::catch_unwind(|| {
            futures_lite::future::block_on(run(|| panic!("from the pool")))
        });
        assert!(result.is_err());
    }
}
