//! What `#[queue_command]` expands to calls. Not public API: anything here may
//! change in any release.

pub use inventory;
pub use serde;

pub use crate::registry::{Command, CommandFuture, CommandResult, Periodic, Run, RunError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Display;

use crate::{BaseQueue, Error, JobId, NewJob, Unique, UniqueBy, When, codec};

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

/// A command's argument tuple, to pick by method resolution how to show
/// it: [`ShowArgs::show`] when it can be read back (always, for a command
/// that compiles), [`HideArgs::show`], one autoref further, otherwise, so
/// that an argument type without serde reports its errors once, where the
/// enqueue and the run need it.
pub struct ArgsProbe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> ArgsProbe<T> {
    /// The probe.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// [`ArgsProbe`]'s method for arguments that can be read back.
pub trait ShowArgs {
    /// The arguments as a JSON object of `names`, in order.
    fn show(&self, bytes: &[u8], names: &[&str]) -> Result<String, String>;
}

impl<T: Serialize + DeserializeOwned> ShowArgs for ArgsProbe<T> {
    fn show(&self, bytes: &[u8], names: &[&str]) -> Result<String, String> {
        let decoded: T = codec::decode(bytes)
            .map_err(|error| format!("the arguments cannot be decoded: {error}"))?;
        let shown =
            |error: serde_json::Error| format!("the arguments cannot be shown as JSON: {error}");
        // a tuple of arguments is a JSON array, `()` is `null`
        let values = match serde_json::to_value(&decoded).map_err(shown)? {
            serde_json::Value::Array(values) => values,
            _ => Vec::new(),
        };
        let fields = names
            .iter()
            .zip(&values)
            .map(|(name, value)| {
                Ok(format!(
                    "{}: {value}",
                    serde_json::to_string(name).map_err(shown)?
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(format!("{{{}}}", fields.join(", ")))
    }
}

/// [`ArgsProbe`]'s method for any other tuple: never used by a command that
/// compiles.
pub trait HideArgs {
    /// Says the arguments cannot be shown.
    fn show(&self, bytes: &[u8], names: &[&str]) -> Result<String, String>;
}

impl<T> HideArgs for &ArgsProbe<T> {
    fn show(&self, _bytes: &[u8], _names: &[&str]) -> Result<String, String> {
        Err("the arguments cannot be shown".to_owned())
    }
}

/// The type a command's stored result decodes as, to pick by method
/// resolution how to show it: [`ShowResult::show`] when it is
/// `DeserializeOwned`, [`HideResult::show`], one autoref further, otherwise.
pub struct ResultProbe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> ResultProbe<T> {
    /// The probe.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// [`ResultProbe`]'s method for a result that can be read back.
pub trait ShowResult {
    /// The result as JSON.
    fn show(&self, bytes: &[u8]) -> Option<Result<String, String>>;
}

impl<T: Serialize + DeserializeOwned> ShowResult for ResultProbe<T> {
    fn show(&self, bytes: &[u8]) -> Option<Result<String, String>> {
        Some(
            codec::decode::<T>(bytes)
                .map_err(|error| format!("the result cannot be decoded: {error}"))
                .and_then(|value| {
                    serde_json::to_string(&value)
                        .map_err(|error| format!("the result cannot be shown as JSON: {error}"))
                }),
        )
    }
}

/// [`ResultProbe`]'s method for any other result type.
pub trait HideResult {
    /// `None`: not shown.
    fn show(&self, bytes: &[u8]) -> Option<Result<String, String>>;
}

impl<T> HideResult for &ResultProbe<T> {
    fn show(&self, _bytes: &[u8]) -> Option<Result<String, String>> {
        None
    }
}

/// For a command written out by hand: its arguments have no typed view.
pub fn show_no_args(_args: &[u8]) -> Result<String, String> {
    Err("this command has no typed view of its arguments".to_owned())
}

/// For a command written out by hand: its result has no typed view.
pub fn show_no_result(_result: &[u8]) -> Option<Result<String, String>> {
    None
}

/// Enqueues a call onto the default backend, or runs it inline in eager mode.
pub fn submit_default<A: Serialize, R>(
    command: &'static Command,
    when: When,
    keys: impl Into<Keys>,
    args: &A,
) -> Result<crate::JobHandle<R>, Error> {
    let keys = keys.into();
    let args = codec::encode(args)?;
    if crate::is_eager() {
        let id = crate::eager::run(command, keys.order, &args)?;
        return Ok(crate::JobHandle::new(id, command));
    }
    let enqueued = store(
        &**crate::default_backend()?,
        new_job(command, when, keys, args),
    )?;
    Ok(crate::JobHandle::new(enqueued.id, command).duplicate(enqueued.duplicate))
}

/// Stores `job` on `backend`: through
/// [`enqueue_unique`](BaseQueue::enqueue_unique) when it has a unique key.
pub(crate) fn store<Q: BaseQueue + ?Sized>(
    backend: &Q,
    job: NewJob,
) -> Result<crate::Enqueued, Error> {
    crate::limits::check_backend(backend, &job)?;
    crate::observe::enqueue(1, || {
        if job.unique.is_some() {
            backend.enqueue_unique(job)
        } else {
            backend.enqueue(job).map(crate::Enqueued::new)
        }
    })
}

/// The keys of one call: its ordering key, and for a command unique by one
/// argument (`unique(by = arg)`) or limited per argument
/// (`concurrency(by = arg)`, `rate(by = arg)`), that argument's value.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    /// The ordering key.
    pub order: Option<String>,
    /// The value a `unique(by = arg)` key is made of.
    pub unique: Option<String>,
    /// The value a `concurrency(by = arg)` key is made of.
    pub concurrency: Option<String>,
    /// The value a `rate(by = arg)` key is made of.
    pub rate: Option<String>,
}

impl From<Option<String>> for Keys {
    fn from(order: Option<String>) -> Self {
        Self {
            order,
            unique: None,
            concurrency: None,
            rate: None,
        }
    }
}

/// The job a call would enqueue, ready now.
pub fn job<A: Serialize>(
    command: &'static Command,
    keys: impl Into<Keys>,
    args: &A,
) -> Result<NewJob, Error> {
    Ok(new_job(
        command,
        When::Now,
        keys.into(),
        codec::encode(args)?,
    ))
}

/// Enqueues a batch of one command's jobs onto the default backend, or
/// runs each inline, in order, in eager mode.
pub fn submit_many_default(
    command: &'static Command,
    jobs: Vec<NewJob>,
) -> Result<Vec<JobId>, Error> {
    if crate::is_eager() {
        return jobs
            .iter()
            .map(|job| crate::eager::run(command, job.key.clone(), &job.args))
            .collect();
    }
    submit_many_on(&**crate::default_backend()?, jobs)
}

/// Enqueues a batch of jobs onto `backend`.
pub fn submit_many_on<Q: BaseQueue + ?Sized>(
    backend: &Q,
    jobs: Vec<NewJob>,
) -> Result<Vec<JobId>, Error> {
    for job in &jobs {
        crate::limits::check_backend(backend, job)?;
    }
    crate::observe::enqueue(jobs.len(), || backend.enqueue_many(jobs))
}

/// An awaited enqueue of a call: see [`Enqueue`](crate::Enqueue).
pub fn enqueue<A: Serialize, R>(
    command: &'static Command,
    keys: impl Into<Keys>,
    args: &A,
) -> crate::Enqueue<R> {
    crate::Enqueue::new(command, keys, codec::encode(args))
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
    keys: impl Into<Keys>,
    args: &A,
) -> Result<JobId, Error> {
    let args = codec::encode(args)?;
    Ok(store(backend, new_job(command, when, keys.into(), args))?.id)
}

/// The job of a call of `command`, with the command's options.
pub(crate) fn new_job(command: &Command, when: When, keys: Keys, args: Vec<u8>) -> NewJob {
    let unique = command.unique.map(|spec| {
        let key = match spec.by {
            UniqueBy::Args => Unique::of_args(command.name, &args),
            UniqueBy::Arg(_) => Unique::of_value(command.name, &keys.unique.unwrap_or_default()),
            UniqueBy::Key(key) => Unique::of_value(command.name, &key),
        };
        Unique::new(key, spec.until)
    });
    let concurrency = command.concurrency.map(|spec| {
        let key = match spec.by {
            None => command.name.to_owned(),
            Some(_) => Unique::of_value(command.name, &keys.concurrency.unwrap_or_default()),
        };
        crate::Concurrency::new(key, spec.max)
    });
    let rate = command.rate.map(|spec| {
        let key = match spec.by {
            None => command.name.to_owned(),
            Some(_) => Unique::of_value(command.name, &keys.rate.unwrap_or_default()),
        };
        crate::RateLimit::new(key, spec.max, spec.per)
    });
    NewJob {
        command: command.name.to_owned(),
        args,
        queue: command.queue.to_owned(),
        key: keys.order,
        priority: command.priority,
        max_attempts: command.max_attempts,
        when,
        timeout: None,
        unique,
        concurrency,
        rate,
    }
}
