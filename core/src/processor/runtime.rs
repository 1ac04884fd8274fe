//! Where async jobs run: a tokio runtime of the processor's own, built the
//! first time an async job runs (so a program with only sync commands never
//! starts one), the `concurrency` slots they take turns in, and the signal
//! that drops the futures of jobs a stop released.
//!
//! Without outband's `runtime` feature there is no runtime: a processor
//! refuses to serve a queue with an async command (see `Engine::new`), and
//! an async job run step by step fails its attempt, saying so.

use std::sync::Arc;

use tokio::sync::{Semaphore, watch};

/// Why an async job cannot run in a program built without the feature.
#[cfg(not(feature = "runtime"))]
pub(super) const NO_RUNTIME: &str =
    "an async command needs outband's `runtime` feature, which this program was built without";

pub(super) struct AsyncJobs {
    /// The async jobs that may run at once.
    pub(super) slots: Arc<Semaphore>,
    /// Set once a stop released the jobs held: their futures are dropped.
    released: watch::Sender<bool>,
    #[cfg(feature = "runtime")]
    runtime: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>>,
    #[cfg(feature = "runtime")]
    threads: usize,
}

impl AsyncJobs {
    pub(super) fn new(slots: usize, threads: usize) -> Self {
        #[cfg(not(feature = "runtime"))]
        let _ = threads;
        Self {
            slots: Arc::new(Semaphore::new(slots.min(Semaphore::MAX_PERMITS))),
            released: watch::Sender::new(false),
            #[cfg(feature = "runtime")]
            runtime: std::sync::OnceLock::new(),
            #[cfg(feature = "runtime")]
            threads: threads.max(1),
        }
    }

    /// A loop starts: no job is released.
    pub(super) fn reset(&self) {
        self.released.send_replace(false);
    }

    /// Drops the futures of every async job still running or waiting for a
    /// slot: a stop released their leases.
    pub(super) fn release(&self) {
        self.released.send_replace(true);
    }

    /// The runtime, started the first time it is asked for.
    #[cfg(feature = "runtime")]
    pub(super) fn runtime(&self) -> Result<&tokio::runtime::Runtime, String> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.threads)
                    .thread_name("outband-async")
                    .enable_all()
                    .build()
                    .map_err(|error| format!("starting the async runtime failed: {error}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Runs `future` on the runtime until it ends, giving `Some` of its
    /// output, or until a stop releases the jobs held, giving `None` (the
    /// future is dropped at its next await).
    #[cfg(feature = "runtime")]
    pub(super) fn spawn<F>(
        &self,
        future: F,
    ) -> Result<tokio::task::JoinHandle<Option<F::Output>>, String>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime()?;
        Ok(runtime.spawn(until_released(future, self.released.subscribe())))
    }

    /// Runs the future `task` makes of each of `items` as
    /// [`spawn`](Self::spawn) runs one, in a task of its own, dropping its
    /// output. One task takes them all to the runtime and spawns them from
    /// the runtime's thread: a task spawned from another thread wakes a
    /// runtime thread, which, with nothing else to do, sleeps again before
    /// the next one comes, while one spawned on the runtime's thread is
    /// queued where that thread finds it. Items not spawned yet when the
    /// runtime ends are dropped.
    #[cfg(feature = "runtime")]
    pub(super) fn spawn_each<T, F>(
        &self,
        items: Vec<T>,
        mut task: impl FnMut(T) -> F + Send + 'static,
    ) -> Result<(), String>
    where
        T: Send + 'static,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime()?;
        let (handle, released) = (runtime.handle().clone(), self.released.subscribe());
        runtime.spawn(async move {
            for item in items {
                handle.spawn(until_released(task(item), released.clone()));
            }
        });
        Ok(())
    }
}

/// `future`, ended with `None` once `released` says a stop released the
/// jobs held (the future is dropped at its next await).
#[cfg(feature = "runtime")]
fn until_released<F: Future>(
    future: F,
    mut released: watch::Receiver<bool>,
) -> impl Future<Output = Option<F::Output>> {
    // A job's future holds the job, its context and its command's
    // future, and each layer around it holds it again: boxed, the
    // layers and the runtime's task move a pointer, not the job.
    let future = Box::pin(future);
    futures_lite::future::or(async move { Some(future.await) }, async move {
        // a sender dropped with the processor releases nothing
        if released.wait_for(|released| *released).await.is_err() {
            std::future::pending::<()>().await;
        }
        None
    })
}

/// How long dropping the runtime waits for its threads to end: those of
/// `spawn_blocking` calls that still run are left behind after it.
#[cfg(feature = "runtime")]
const THREADS_END: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(feature = "runtime")]
impl Drop for AsyncJobs {
    fn drop(&mut self) {
        let Some(Ok(runtime)) = self.runtime.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // The last owner may be a task on a runtime, this one or
            // another, where a runtime cannot wait for threads.
            runtime.shutdown_background();
        } else {
            // Its threads end before the processor is gone, so none of
            // them is still ending when the program exits: a thread that
            // ran a command's blocking call may hold a C library's
            // per-thread state (OpenSSL's, under libpq), whose cleanup at
            // the thread's end must not cross the library's own at exit.
            runtime.shutdown_timeout(THREADS_END);
        }
    }
}
