//! Eager mode: annotated calls run inline.
//!
//! A plain call (`f(…)`) runs the command on the calling thread; an async
//! command's future is driven to its end there (see [`block_on`]). An
//! awaited call (`f::enqueue(…).await`) awaits an async command's future in
//! the caller's task, and runs a sync command on the blocking pool.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::{Run, RunError};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::{Command, Error, Job, JobContext, JobId};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `command` on its encoded arguments now, as a consumer would.
pub(crate) fn run(
    command: &'static Command,
    key: Option<String>,
    args: &[u8],
) -> Result<JobId, Error> {
    let (id, context) = context(command, key);
    let result = match command.run {
        Run::Sync(run) => run(args, &context),
        Run::Async(run) => block_on(run(args, &context)),
    };
    settle(command, id, result)
}

/// Runs `command` on its encoded arguments now, awaited.
pub(crate) async fn run_awaited(
    command: &'static Command,
    key: Option<String>,
    args: Vec<u8>,
) -> Result<JobId, Error> {
    let (id, context) = context(command, key);
    let result = match command.run {
        Run::Sync(run) => crate::blocking::run(move || run(&args, &context)).await,
        Run::Async(run) => run(&args, &context).await,
    };
    settle(command, id, result)
}

/// The id an inline run gets, and its context: the first attempt, in the
/// command's queue, never cancelled; its progress and heartbeats go
/// nowhere.
fn context(command: &Command, key: Option<String>) -> (JobId, JobContext) {
    let id = JobId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let mut job = Job::new(id, command.name, Vec::new());
    job.queue = command.queue.to_owned();
    job.key = key;
    job.attempt = 1;
    job.max_attempts = command.max_attempts;
    job.enqueued_at = SystemTime::now();
    (id, JobContext::new(&job, None, None))
}

/// The values of the latest inline runs, for `JobHandle`: by id, with
/// their command's name.
static RESULTS: Mutex<BTreeMap<JobId, Kept>> = Mutex::new(BTreeMap::new());

/// An inline run's command and encoded value.
type Kept = (&'static str, Option<Vec<u8>>);

/// How many inline runs' values are kept.
const KEPT: usize = 10_000;

/// The command and value of an inline run, while it is kept.
pub(crate) fn result_of(id: JobId) -> Option<Kept> {
    RESULTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
}

fn settle(
    command: &'static Command,
    id: JobId,
    result: Result<Option<Vec<u8>>, RunError>,
) -> Result<JobId, Error> {
    match result {
        Ok(value) => {
            let mut results = RESULTS.lock().unwrap_or_else(PoisonError::into_inner);
            results.insert(id, (command.name, value));
            if results.len() > KEPT {
                results.pop_first();
            }
            Ok(id)
        }
        Err(RunError::Args(error) | RunError::Output(error)) => Err(Error::Codec(error)),
        Err(RunError::Cancelled) => Err(Error::CommandFailed {
            command: command.name.to_owned(),
            error: "cancelled".to_owned(),
        }),
        Err(RunError::Failed(error) | RunError::RetryAfter(error, _) | RunError::Fatal(error)) => {
            Err(Error::CommandFailed {
                command: command.name.to_owned(),
                error,
            })
        }
    }
}

/// Drives an async command's future to its end on this thread: on a
/// tokio runtime of its own with the `runtime` feature (on a thread of its
/// own when this thread is already inside a runtime, which cannot be
/// blocked), else with a bare executor that supports no tokio I/O or timer.
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    #[cfg(feature = "runtime")]
    {
        let run = move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a tokio runtime for an async command")
                .block_on(future)
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| match scope.spawn(run).join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        } else {
            run()
        }
    }
    #[cfg(not(feature = "runtime"))]
    {
        futures_lite::future::block_on(future)
    }
}
