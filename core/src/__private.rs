//! What `#[queue_command]` expands to calls. Not public API: anything here may
//! change in any release.

pub use inventory;
pub use serde;

pub use crate::registry::{Command, CommandFuture, CommandResult, Periodic, Run, RunError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Display;

use crate::{BaseQueue, Error, JobId, NewJob, When, codec};

/// Decodes a command's argument tuple.
pub fn decode_args<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RunError> {
    codec::decode(bytes).map_err(RunError::Args)
}

/// Encodes the return value of a command that returns a plain value.
pub fn output_value<T: Serialize>(value: T) -> Result<Option<Vec<u8>>, RunError> {
    let bytes = codec::encode(&value).map_err(RunError::Output)?;
    Ok((!codec::is_unit(&bytes)).then_some(bytes))
}

/// Encodes the return value of a command that returns a `Result`; an `Err`
/// fails the attempt with the error's text, or as a [`Fail`](crate::Fail)
/// says. `fail` is the expansion's `|e| (&Failure(e)).run_error()`, which
/// resolves where the error's type is known.
pub fn output_result<T: Serialize, E: Display>(
    result: Result<T, E>,
    fail: impl FnOnce(&E) -> Option<RunError>,
) -> Result<Option<Vec<u8>>, RunError> {
    match result {
        Ok(value) => output_value(value),
        Err(error) => Err(fail(&error).unwrap_or_else(|| RunError::Failed(error.to_string()))),
    }
}

/// A command's error, to tell a [`Fail`](crate::Fail) from any other type by
/// method resolution: `(&Failure(e)).run_error()` finds
/// [`FailError::run_error`] when `e` is a `&Fail` and
/// [`OtherError::run_error`], one autoref further, otherwise.
pub struct Failure<'a, E>(pub &'a E);

/// [`Failure`]'s method for a [`Fail`](crate::Fail): what it asks for.
pub trait FailError {
    /// The attempt's failure.
    fn run_error(&self) -> Option<RunError>;
}

impl FailError for Failure<'_, crate::Fail> {
    fn run_error(&self) -> Option<RunError> {
        Some(self.0.to_run_error())
    }
}

/// [`Failure`]'s method for any other error type: an ordinary failure.
pub trait OtherError {
    /// `None`: the caller fails the attempt with the error's text.
    fn run_error(&self) -> Option<RunError>;
}

impl<E> OtherError for &Failure<'_, E> {
    fn run_error(&self) -> Option<RunError> {
        None
    }
}

/// Enqueues a call onto the default backend, or runs it inline in eager mode.
pub fn submit_default<A: Serialize>(
    command: &'static Command,
    when: When,
    key: Option<String>,
    args: &A,
) -> Result<JobId, Error> {
    let args = codec::encode(args)?;
    if crate::is_eager() {
        return crate::eager::run(command, &args);
    }
    crate::default_backend()?.enqueue(new_job(command, when, key, args))
}

/// An awaited enqueue of a call: see [`Enqueue`](crate::Enqueue).
pub fn enqueue<A: Serialize>(
    command: &'static Command,
    key: Option<String>,
    args: &A,
) -> crate::Enqueue {
    crate::Enqueue::new(command, key, codec::encode(args))
}

/// Boxes an async command's run. The bound is where a command whose
/// future is not `Send` is refused: consumers run it on a multi-threaded
/// runtime.
pub fn run_async<F>(future: F) -> CommandFuture
where
    F: Future<Output = Result<Option<Vec<u8>>, RunError>> + Send + 'static,
{
    Box::pin(future)
}

/// Enqueues a call onto `backend`.
pub fn submit_on<Q: BaseQueue + ?Sized, A: Serialize>(
    backend: &Q,
    command: &'static Command,
    when: When,
    key: Option<String>,
    args: &A,
) -> Result<JobId, Error> {
    let args = codec::encode(args)?;
    backend.enqueue(new_job(command, when, key, args))
}

fn new_job(command: &Command, when: When, key: Option<String>, args: Vec<u8>) -> NewJob {
    NewJob {
        command: command.name.to_owned(),
        args,
        queue: command.queue.to_owned(),
        key,
        priority: command.priority,
        max_attempts: command.max_attempts,
        when,
    }
}
