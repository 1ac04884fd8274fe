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
/// fails the attempt with the error's text.
pub fn output_result<T: Serialize, E: Display>(
    result: Result<T, E>,
) -> Result<Option<Vec<u8>>, RunError> {
    match result {
        Ok(value) => output_value(value),
        Err(error) => Err(RunError::Failed(error.to_string())),
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
