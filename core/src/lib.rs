//! Run work out-of-band: annotate a function with [`#[queue_command]`](queue_command),
//! call it from a web handler, and a consumer on this host or any other runs it.
//!
//! Calling an annotated function serializes the call into a queue held by a
//! backend — Redis, an SQL database, or [`MemoryQueue`] in tests — and returns
//! at once a [`JobHandle`] on the job: its id, and its value once it ran. A processor ([`SimpleProcessor`] or
//! [`MultiProcessor`]), usually inside the consumer daemon, claims the job
//! under a lease, runs it, and completes it with the outcome. Nothing is lost when a
//! consumer crashes or a payload is garbage: every job ends `done`, is
//! retried, or waits in the dead-letter state with its reason.
//!
//! ```
//! use outband::{MemoryQueue, ProcessorConfig, SimpleProcessor, queue_command};
//! use std::sync::Arc;
//!
//! #[queue_command(queue = "emails", retries = 5, key = user_id)]
//! fn send_welcome(user_id: u64, template: String) -> Result<(), String> {
//!     println!("welcome mail {template} to user {user_id}");
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), outband::Error> {
//! let backend = Arc::new(MemoryQueue::new());
//! outband::set_default_backend(backend.clone())?;
//!
//! let job = send_welcome(7, "hi".into())?;         // enqueues, returns a JobHandle
//! send_welcome::call(8, "now".into()).unwrap();     // runs inline, now
//!
//! let processor = SimpleProcessor::new(backend.clone(), ProcessorConfig::default())?;
//! assert!(processor.process_next()?);              // the consumer's side
//! # use outband::BaseQueue;
//! assert_eq!(backend.job(job.id())?.unwrap().state, outband::JobState::Done);
//! job.wait(std::time::Duration::from_secs(1)).unwrap(); // what it returned: ()
//! # Ok(()) }
//! ```
//!
//! # Async
//!
//! A command may be an `async fn`, and async code enqueues any command with
//! one `.await` that never blocks its runtime:
//!
//! ```
//! use outband::queue_command;
//!
//! #[queue_command(queue = "webhooks", retries = 5)]
//! async fn notify(url: String, event: String) -> Result<(), String> {
//!     // an HTTP call, a mail, a query: awaited, holding no thread
//!     # let _ = (url, event);
//!     Ok(())
//! }
//!
//! // in an axum handler, or any async fn:
//! async fn signed_up(user_id: u64) -> Result<(), outband::Error> {
//!     notify::enqueue("https://hooks.example/signup".into(), user_id.to_string()).await?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! A consumer runs async jobs on a tokio runtime of its own (the `runtime`
//! feature), up to [`ProcessorConfig::concurrency`] at once, apart from the
//! threads that run sync jobs; leases, heartbeats, retries, ordering keys and
//! the two-stage stop hold for both. `f(…)`, `f::schedule` and
//! `f::enqueue_on` stay plain calls for sync code; [`Enqueue`] is what
//! `f::enqueue(…)` returns.
//!
//! # Where things are
//!
//! | item | what it is |
//! |---|---|
//! | [`queue_command`] | the attribute: the function enqueues, `::call` runs inline, `::enqueue` awaits an enqueue, `::schedule` and `::enqueue_on` |
//! | [`Enqueue`] | an enqueue to `.await` from async code |
//! | [`JobHandle`] | a job typed by its command's value: wait for that value, or why there is none |
//! | [`JobContext`] | what a running command may know of its job: id, attempt, cancellation, progress, heartbeat |
//! | [`BaseQueue`] | the backend contract: enqueue, claim with a lease, heartbeat, complete, recover, stats, dead letters |
//! | [`MemoryQueue`] | the in-memory backend, and the model for custom ones |
//! | [`SimpleProcessor`], [`MultiProcessor`] | run jobs one at a time, or up to `max_threads` at once |
//! | [`maintenance`] | recovery of expired leases, the purge and the periodic scheduler, which a started processor runs |
//! | [`ConsumerInfo`], [`Consumer`] | the consumer registry: each consumer's heartbeat in the backend, alive or gone |
//! | [`Registry`] | the commands linked into this program |
//! | [`codec`] | how arguments and results become bytes, with a size limit |
//! | [`set_default_backend`], [`open`], [`set_eager`] | process-wide settings |
//!
//! # Settings and their defaults
//!
//! | setting | default | where |
//! |---|---|---|
//! | default backend | none: enqueuing is `Error::NoDefaultBackend` | `outband::set_default_backend`, or `OUTBAND_URL` |
//! | eager mode | off | `outband::set_eager`, or `OUTBAND_EAGER=1` |
//! | payload limit | 1 MiB | `outband::codec::set_max_payload` |
//! | queue of a command | `default` | `#[queue_command(queue = "…")]` |
//! | retries | 3 (4 attempts) | `#[queue_command(retries = N)]` |
//! | priority | 0, higher runs first | `#[queue_command(priority = N)]` |
//! | queues a processor serves | every queue with a registered command | `ProcessorConfig::queues` |
//! | idle wait between polls | 1 s (backends that can wake a consumer do so at once) | `ProcessorConfig::wait_time` |
//! | idle wait growth | none; the daemon uses ×1.15 per empty poll up to 2 s (djutils `-b`, `-m`) | `ProcessorConfig::wait_backoff` |
//! | lease | 30 s; a running job's is extended every sixth of it | `ProcessorConfig::lease` |
//! | timeout of an attempt | none; a sync command gets 5 s of grace past it | `#[queue_command(timeout = "…")]`, `NewJob::timeout`; `ProcessorConfig::timeout_grace` |
//! | threads of `MultiProcessor` | 5 | `ProcessorConfig::max_threads`; daemon `-t` |
//! | jobs `MultiProcessor` claims ahead of its threads | adaptive: what its threads and async slots finish during one call to the backend, up to 32; none for jobs longer than a call | `ProcessorConfig::prefetch` (`Prefetch`); daemon `--prefetch auto\|N` |
//! | async jobs run at once, apart from the threads | 100 | `ProcessorConfig::concurrency`; daemon `-c` |
//! | `MultiProcessor`'s completing calls in flight at once (each also claims the next jobs, for its share of the leases) | the backend's: 2, or 1 on SQLite | `ProcessorConfig::completers`; daemon `--completers` |
//! | backoff | 1 s × 2ⁿ⁻¹, capped at 1 h, ±25 % jitter | `ProcessorConfig::retry` |
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-suite` | no | [`test_suite`]: the conformance suite every backend runs; turns on `runtime`, as its cases run async commands |
//! | `runtime` | no (on in the consumer daemon) | runs `async fn` commands: a tokio runtime in each processor that serves one, started the first time an async job runs; a program with only sync commands does not need it |
//!
//! # Environment
//!
//! | variable | meaning |
//! |---|---|
//! | `OUTBAND_URL` | opens the default backend when none was set in code (`memory://`, and the schemes of linked backends) |
//! | `OUTBAND_EAGER` | `1` or `true`: annotated calls run inline instead of enqueuing |
//!
//! # Linking rule
//!
//! The consumer knows the commands linked into its binary, and only those. A
//! binary must use something from each crate that defines commands (see
//! [`Registry`]); backends likewise, for [`open`] to find their URL schemes.
//! A consumer serves by default only the queues of the commands it knows
//! (`default` if it knows none), so the jobs of a command it does not link,
//! on any other queue, stay `pending`.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Lets the crate's own `#[queue_command]`s (the suite's) expand to `::outband::…`.
#[allow(unused_extern_crates)]
extern crate self as outband;

pub mod admin;
pub mod backend;
mod blocking;
mod coalesce;
pub mod codec;
mod consumers;
mod context;
mod eager;
mod enqueue;
mod error;
mod fail;
mod handle;
mod job;
mod limits;
mod listing;
pub mod maintenance;
mod memory;
pub mod observe;
mod processor;
mod queue;
mod registry;
mod settings;
mod unique;

#[cfg(feature = "test-suite")]
pub mod test_suite;

#[doc(hidden)]
pub mod __private;

pub use consumers::{
    CONSUMER_FORGET_AFTER, CONSUMER_HEARTBEAT, CONSUMER_TTL, Consumer, ConsumerInfo,
};
pub use context::JobContext;
pub use enqueue::Enqueue;
pub use error::{BoxError, Error};
pub use fail::Fail;
pub use handle::{JobError, JobHandle};
pub use job::{
    Cancellation, Claimed, Completion, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, Heartbeat, Job, JobId,
    JobState, Lease, NewJob, Outcome, Progress, QueueStats, Recovered, When,
};
pub use limits::{Concurrency, ConcurrencySpec, MAX_LIMIT_KEY, RateLimit, RateSpec};
pub use listing::{JobPage, JobQuery};
pub use memory::MemoryQueue;
pub use processor::{
    Backoff, MultiProcessor, Prefetch, Processed, Processor, ProcessorConfig, RetryPolicy,
    SimpleProcessor, StopReport,
};
pub use queue::{AsyncEnqueue, BaseQueue, BoxFuture, CancelFeed, Capabilities};
pub use registry::{Command, Periodic, Registry};
pub use settings::{
    Opener, cancel, default_backend, is_eager, open, set_default_backend, set_eager,
};
pub use unique::{Enqueued, MAX_UNIQUE_KEY, Unique, UniqueBy, UniqueSpec, UniqueUntil};

/// Makes a function a queued command. See the [crate documentation](crate)
/// for an example and [`outband_macros::queue_command`] for every option.
pub use outband_macros::queue_command;

/// Makes a function a command the consumer enqueues on a cron schedule; see
/// [`outband_macros::periodic_command`].
pub use outband_macros::periodic_command;
