//! The registry of commands: every `#[queue_command]` linked into the program.
//!
//! `#[queue_command]` submits a [`Command`] through [`inventory`]; the registry
//! collects them once, the first time it is asked, and refuses two commands
//! with the same name, naming both places.
//!
//! **Linking rule.** Only commands linked into the running binary are found.
//! A command defined in a library crate is linked when the binary uses
//! something from that crate; if it uses nothing, add `use my_commands as _;`
//! or call one of its functions. A consumer whose binary does not link a
//! crate's commands does not know them, and by default its processors serve
//! only the queues of the commands it knows (see
//! [`ProcessorConfig::queues`](crate::ProcessorConfig::queues)): it never
//! claims the jobs of those commands' queues, which stay `pending` until a
//! consumer that links them runs; the consumer daemon warns about this at
//! start. A job that a consumer does claim, on a queue it serves, but whose
//! command it does not know fails each attempt with
//! [`Error::UnknownCommand`], which lists the known commands, and ends `dead`
//! as an unknown command once its attempts are spent.
//!
//! The benchmark's commands (crate `outband-bench`) are not registered: the
//! registry never lists them, and the benchmark runs them on processors of
//! its own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use crate::codec::CodecError;
use crate::{Backoff, Error, JobContext};

/// A command as `#[queue_command]` registers it: its name, queue, options and
/// the function that runs it from encoded arguments.
#[derive(Debug)]
pub struct Command {
    /// The stable name jobs refer to it by: `module::path::fn_name`, or the
    /// macro's `name = "…"`.
    pub name: &'static str,
    /// The queue its jobs go to.
    pub queue: &'static str,
    /// Attempts a job gets: `retries` + 1.
    pub max_attempts: u32,
    /// Priority of its jobs; higher runs first.
    pub priority: i16,
    /// The argument whose value is the ordering key, if any.
    pub key: Option<&'static str>,
    /// Its `unique` option: what a job's unique key is made of and how
    /// long it is held; `None` for a command whose jobs are not unique.
    pub unique: Option<crate::UniqueSpec>,
    /// Its `concurrency` option: how many of its jobs run at once, and the
    /// argument the limit is kept per; `None` for no limit.
    pub concurrency: Option<crate::ConcurrencySpec>,
    /// Its `rate` option: how many of its jobs start per period, and the
    /// argument the limit is kept per; `None` for no limit.
    pub rate: Option<crate::RateSpec>,
    /// How its failed attempts are spaced: `backoff = "…"`, or the
    /// consumer's policy.
    pub backoff: Backoff,
    /// How long one attempt may run: `timeout = "…"`; a job's own
    /// [`Job::timeout`](crate::Job::timeout) replaces it.
    pub timeout: Option<Duration>,
    /// Shows encoded arguments as JSON: see [`args_json`](Self::args_json).
    #[doc(hidden)]
    pub show_args: fn(&[u8]) -> Result<String, String>,
    /// Shows an encoded result as JSON: see [`result_json`](Self::result_json).
    #[doc(hidden)]
    pub show_result: fn(&[u8]) -> Option<Result<String, String>>,
    /// The source file that defines it.
    pub file: &'static str,
    /// The line that defines it.
    pub line: u32,
    /// Decodes the arguments, runs the command and encodes its return value.
    #[doc(hidden)]
    pub run: Run,
}

/// How a registered command is run: encoded arguments and the job's
/// context in, encoded return value (if any) out; now, on the calling thread, for a plain `fn`, or as
/// a future for an `async fn`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Run {
    /// A plain `fn`: runs on the calling thread.
    Sync(fn(&[u8], &JobContext) -> CommandResult),
    /// An `async fn`: the arguments are decoded at once, and the future
    /// runs the body.
    Async(fn(&[u8], &JobContext) -> CommandFuture),
}

/// What a command's run gives: its encoded return value, if any, or why
/// the run failed.
#[doc(hidden)]
pub type CommandResult = Result<Option<Vec<u8>>, RunError>;

/// The future of an async command's run: the encoded return value, or why
/// the run failed.
#[doc(hidden)]
pub type CommandFuture = Pin<Box<dyn Future<Output = CommandResult> + Send>>;

impl Command {
    /// Where the command is defined, as `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Runs the command on encoded arguments now, on this thread: an async
    /// command's future is driven to its end here, as in eager mode.
    #[doc(hidden)]
    /// The command gets a [`JobContext::detached`].
    pub fn run_now(&self, args: &[u8]) -> Result<Option<Vec<u8>>, RunError> {
        let context = &JobContext::detached();
        match self.run {
            Run::Sync(run) => run(args, context),
            Run::Async(run) => crate::eager::block_on(run(args, context)),
        }
    }

    /// A job's encoded arguments as a JSON object, decoded through the
    /// command's own argument types and named as the function names them
    /// (`arg1`, `arg2`… for a pattern): what `job ID` shows. An error says
    /// why they cannot be decoded (arguments of an older signature, say).
    pub fn args_json(&self, args: &[u8]) -> Result<String, String> {
        (self.show_args)(args)
    }

    /// A stored result as JSON, decoded through the command's return type
    /// (`T` of a `Result<T, E>`), or `None` when that type cannot be read
    /// back: not `DeserializeOwned`, or not named in the signature.
    pub fn result_json(&self, result: &[u8]) -> Option<Result<String, String>> {
        (self.show_result)(result)
    }

    /// Whether it is an `async fn`: a consumer runs its jobs on its async
    /// runtime, up to [`ProcessorConfig::concurrency`](crate::ProcessorConfig::concurrency)
    /// at once, rather than on its threads.
    pub fn is_async(&self) -> bool {
        matches!(self.run, Run::Async(_))
    }
}

inventory::collect!(Command);

/// A command that `#[periodic_command]` enqueues on a cron schedule.
#[derive(Debug)]
pub struct Periodic {
    /// The command.
    pub command: &'static Command,
    /// Its schedule: five cron fields, or six with seconds first.
    pub cron: &'static str,
}

inventory::collect!(Periodic);

/// Why running a command from its encoded arguments failed.
#[doc(hidden)]
#[derive(Debug)]
pub enum RunError {
    /// The arguments cannot be decoded: the job can never run.
    Args(CodecError),
    /// The command ran and returned an error: retried after the backoff.
    Failed(String),
    /// The command returned [`Fail::retry_after`](crate::Fail::retry_after):
    /// retried after the given delay.
    RetryAfter(String, Duration),
    /// The command returned [`Fail::fatal`](crate::Fail::fatal): dead at once.
    Fatal(String),
    /// The command succeeded but its return value could not be encoded.
    Output(CodecError),
    /// The job was cancelled while it ran, and its future dropped.
    Cancelled,
}

/// The commands of this program, by name.
#[derive(Debug)]
pub struct Registry {
    commands: HashMap<&'static str, &'static Command>,
    names: Vec<&'static str>,
    periodic: Vec<&'static Periodic>,
}

static GLOBAL: OnceLock<Result<Registry, Error>> = OnceLock::new();

impl Registry {
    /// The registry of every `#[queue_command]` linked into this program,
    /// built on first use; the benchmark's commands are not among them. Fails,
    /// every time it is asked, if two commands share a name.
    pub fn global() -> Result<&'static Registry, Error> {
        let build = || {
            let mut registry = Self::from_commands(inventory::iter::<Command>)?;
            registry.periodic = inventory::iter::<Periodic>.into_iter().collect();
            registry.periodic.sort_unstable_by_key(|p| p.command.name);
            Ok(registry)
        };
        match GLOBAL.get_or_init(build) {
            Ok(registry) => Ok(registry),
            Err(Error::DuplicateCommand {
                name,
                first,
                second,
            }) => Err(Error::DuplicateCommand {
                name: name.clone(),
                first: first.clone(),
                second: second.clone(),
            }),
            Err(other) => Err(Error::Config(other.to_string())),
        }
    }

    /// A registry of the given commands; fails if two share a name.
    pub fn from_commands(
        commands: impl IntoIterator<Item = &'static Command>,
    ) -> Result<Registry, Error> {
        let mut by_name: HashMap<&'static str, &'static Command> = HashMap::new();
        for command in commands {
            if let Some(first) = by_name.insert(command.name, command) {
                let (mut first, mut second) = (first.location(), command.location());
                // inventory's order is the linker's; name the places in a stable order
                if second < first {
                    std::mem::swap(&mut first, &mut second);
                }
                return Err(Error::DuplicateCommand {
                    name: command.name.to_owned(),
                    first,
                    second,
                });
            }
        }
        let mut names: Vec<_> = by_name.keys().copied().collect();
        names.sort_unstable();
        Ok(Registry {
            commands: by_name,
            names,
            periodic: Vec::new(),
        })
    }

    /// The command called `name`, or [`Error::UnknownCommand`] listing the
    /// known ones.
    pub fn get(&self, name: &str) -> Result<&'static Command, Error> {
        self.commands
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownCommand {
                name: name.to_owned(),
                known: self.names.iter().map(|&n| n.to_owned()).collect(),
            })
    }

    /// Every command, sorted by name.
    pub fn commands(&self) -> impl Iterator<Item = &'static Command> + '_ {
        self.names.iter().map(|name| self.commands[name])
    }

    /// The periodic commands, sorted by name.
    pub fn periodic(&self) -> &[&'static Periodic] {
        &self.periodic
    }

    /// The distinct queues the commands use, sorted.
    pub fn queues(&self) -> Vec<&'static str> {
        let mut queues: Vec<_> = self.commands.values().map(|c| c.queue).collect();
        queues.sort_unstable();
        queues.dedup();
        queues
    }

    /// How many commands there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
