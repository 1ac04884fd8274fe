//! Eager mode: annotated calls run inline.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::RunError;
use crate::{Command, Error, JobId};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `command` on its encoded arguments now, as a consumer would.
pub(crate) fn run(command: &Command, args: &[u8]) -> Result<JobId, Error> {
    match (command.run)(args) {
        Ok(_) => Ok(JobId(NEXT_ID.fetch_add(1, Ordering::Relaxed))),
        Err(RunError::Args(error) | RunError::Output(error)) => Err(Error::Codec(error)),
        Err(RunError::Failed(error)) => Err(Error::CommandFailed {
            command: command.name.to_owned(),
            error,
        }),
    }
}
