//! The commands the suite's jobs run. Each names itself, so its registered
//! name stays `outband::test_suite::…` wherever this file sits.
//!
//! The async ones are registered on a queue of their own, [`ASYNC_QUEUE`],
//! which no case enqueues to: a processor runs async jobs on its runtime
//! only when a queue it serves has an async command, so the cases that run
//! them serve that queue beside their own. The exception,
//! [`enqueued_async`], lives on another queue, so that the jobs its case
//! leaves there are never taken by those processors.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::queue_command;

/// The queue the async commands but [`enqueued_async`] are registered on;
/// it stays empty.
pub(super) const ASYNC_QUEUE: &str = "outband-test-suite-async";

/// Returns its argument; its result is stored.
#[queue_command(name = "outband::test_suite::echo")]
pub fn echo(value: u64) -> u64 {
    value
}

/// Always fails with `message`.
#[queue_command(name = "outband::test_suite::fail")]
pub fn fail(message: String) -> Result<(), String> {
    Err(message)
}

/// Always panics with `message`.
#[queue_command(name = "outband::test_suite::panic")]
pub fn panics(message: String) {
    panic!("{message}")
}

/// Returns its argument after an await; its result is stored.
#[queue_command(
    name = "outband::test_suite::echo_async",
    queue = "outband-test-suite-async"
)]
pub async fn echo_async(value: u64) -> u64 {
    tokio::task::yield_now().await;
    value
}

/// Always fails with `message`, after an await.
#[queue_command(
    name = "outband::test_suite::fail_async",
    queue = "outband-test-suite-async"
)]
pub async fn fail_async(message: String) -> Result<(), String> {
    tokio::task::yield_now().await;
    Err(message)
}

/// Always panics with `message`, inside its future, after an await.
#[queue_command(
    name = "outband::test_suite::panic_async",
    queue = "outband-test-suite-async"
)]
pub async fn panics_async(message: String) {
    tokio::task::yield_now().await;
    panic!("{message}")
}

/// Sleeps `millis` on tokio's timer, recording in run `run`'s log when job
/// `tag` started and ended, or that its future was dropped unfinished.
#[queue_command(
    name = "outband::test_suite::sleep_async",
    queue = "outband-test-suite-async"
)]
pub async fn sleep_async(run: u64, tag: u32, millis: u64) -> u32 {
    let mut watch = Started::new(run, tag);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    watch.end();
    tag
}

/// Waits until job `partner` of run `run` has started too, then returns
/// `true`; `false` if it gave up waiting, well before a case gives up on
/// its jobs. Two jobs that meet each other ran at the same time.
#[queue_command(
    name = "outband::test_suite::meet_async",
    queue = "outband-test-suite-async"
)]
pub async fn meet_async(run: u64, tag: u32, partner: u32) -> bool {
    let mut watch = Started::new(run, tag);
    let mut waited = Duration::ZERO;
    let met = loop {
        if with_log(run, |log| log.contains(&Event::Start(partner))) {
            break true;
        }
        if waited >= MEET_WITHIN {
            break false;
        }
        tokio::time::sleep(POLL).await;
        waited += POLL;
    };
    watch.end();
    met
}

/// Stored by the awaited enqueue case: its options differ from the
/// defaults, so that the job stored shows they were kept.
#[queue_command(
    name = "outband::test_suite::enqueued_async",
    queue = "outband-test-suite-async-enqueued",
    key = account,
    priority = 7,
    retries = 4
)]
pub async fn enqueued_async(account: String, value: u64) -> u64 {
    let _ = account;
    value
}

/// How long [`meet_async`] waits for its partner: well within the time a
/// case waits for its jobs, so that jobs that cannot meet end, and say so.
const MEET_WITHIN: Duration = Duration::from_secs(20);

const POLL: Duration = Duration::from_millis(5);

/// What a job of [`sleep_async`] or [`meet_async`] did, in the order it
/// happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// Job `tag`'s future started.
    Start(u32),
    /// Job `tag`'s future ended.
    End(u32),
    /// Job `tag`'s future was dropped before it ended.
    Dropped(u32),
}

/// The events of every run, by run: each case takes a run of its own
/// ([`new_run`]), so cases that run at once keep apart.
static LOGS: Mutex<Option<HashMap<u64, Vec<Event>>>> = Mutex::new(None);

fn with_log<T>(run: u64, f: impl FnOnce(&mut Vec<Event>) -> T) -> T {
    let mut logs = LOGS.lock().unwrap_or_else(PoisonError::into_inner);
    f(logs
        .get_or_insert_with(HashMap::new)
        .entry(run)
        .or_default())
}

/// A run no other case uses.
pub(super) fn new_run() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The events of run `run` so far.
pub(super) fn events(run: u64) -> Vec<Event> {
    with_log(run, |log| log.clone())
}

/// Records a job's start, then its end, or its drop if it never ends.
struct Started {
    run: u64,
    tag: u32,
    ended: bool,
}

impl Started {
    fn new(run: u64, tag: u32) -> Self {
        with_log(run, |log| log.push(Event::Start(tag)));
        Self {
            run,
            tag,
            ended: false,
        }
    }

    fn end(&mut self) {
        with_log(self.run, |log| log.push(Event::End(self.tag)));
        self.ended = true;
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if !self.ended {
            with_log(self.run, |log| log.push(Event::Dropped(self.tag)));
        }
    }
}
