//! Maintenance: what keeps a backend healthy whoever consumes from it —
//! recovery of expired leases and the purge of old `done` jobs
//! ([`Maintenance`]) — and the periodic scheduler ([`Scheduler`]).
//!
//! Each step is one `*_once` call, separate from the loop that repeats it
//! ([`Maintenance::run`], [`Scheduler::run`]), so that a test calls one step
//! on a state it built and looks at the result. Every step is atomic in the
//! backend, job by job ([`BaseQueue::recover_expired`],
//! [`BaseQueue::purge`], [`BaseQueue::claim_tick`]), so any number of
//! consumers may run maintenance on one backend at once: a processor runs
//! [`Maintenance`] by default (see
//! [`ProcessorConfig::maintenance`](crate::ProcessorConfig::maintenance)), so
//! that a program that starts one without the daemon still gets its expired
//! leases back.
//!
//! ```
//! use outband::maintenance::Maintenance;
//! use outband::{BaseQueue, JobState, MemoryQueue, NewJob};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let queue = Arc::new(MemoryQueue::new());
//! let id = queue.enqueue(NewJob::new("app::ping", outband::codec::encode(&())?))?;
//! // a worker claims the job and is never heard of again
//! queue.claim("default", 1, Duration::ZERO)?;
//! let maintenance = Maintenance::new(queue.clone(), Duration::from_secs(30));
//! assert_eq!(maintenance.recover_once()?.requeued, 1);
//! assert_eq!(queue.job(id)?.unwrap().state, JobState::Pending);
//! # Ok::<(), outband::Error>(())
//! ```

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::{BaseQueue, Error, NewJob, Periodic, Recovered, Registry};

/// How long `done` jobs are kept before the purge deletes them, unless set:
/// 7 days, as the daemon's `--retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The shortest period between two maintenance steps.
const MIN_PERIOD: Duration = Duration::from_millis(100);

/// A flag a maintenance loop waits on, set once to ask it to stop: the loop
/// wakes at once rather than at the end of its period.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    wakeup: Condvar,
}

impl Stop {
    /// A flag not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the loops waiting on this flag to stop.
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wakeup.notify_all();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `period`; returns `true`, at once, when asked to stop.
    pub fn sleep(&self, period: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wakeup
            .wait_timeout_while(stopped, period, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}

/// Recovery of expired leases and the purge, on one backend: the manager of
/// a consumer (the persistent queue's manager, River's rescuer, Oban's
/// lifeline).
///
/// [`recover_once`](Self::recover_once) and [`purge_once`](Self::purge_once)
/// are the steps; [`run`](Self::run) repeats both every period until asked to
/// stop, and [`spawn`](Self::spawn) runs that loop on a thread of its own.
#[derive(Clone)]
pub struct Maintenance {
    queue: Arc<dyn BaseQueue>,
    period: Duration,
    retention: Duration,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance")
            .field("period", &self.period)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Maintenance {
    /// Maintenance of `queue` for consumers that lease jobs for `lease`: a
    /// step every half lease (at least every 100 ms), so that a lost lease is
    /// taken back at most half a lease after it expired, and `done` jobs kept
    /// for [`DEFAULT_RETENTION`].
    pub fn new(queue: Arc<dyn BaseQueue>, lease: Duration) -> Self {
        Self {
            queue,
            period: (lease / 2).max(MIN_PERIOD),
            retention: DEFAULT_RETENTION,
        }
    }

    /// Sets how long `done` jobs are kept before the purge deletes them.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The time between two steps of [`run`](Self::run).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// One recovery step: [`BaseQueue::recover_expired`], which returns each
    /// `running` job whose lease expired to `pending`, or to `dead` when its
    /// attempts are spent ([`backend::fate::expired`](crate::backend::fate::expired)).
    /// Logs what it recovered.
    pub fn recover_once(&self) -> Result<Recovered, Error> {
        let recovered = self.queue.recover_expired()?;
        if recovered.requeued + recovered.dead > 0 {
            log::warn!(
                "manager: {} expired leases returned to the queue, {} jobs dead",
                recovered.requeued,
                recovered.dead
            );
        }
        Ok(recovered)
    }

    /// One purge step: [`BaseQueue::purge`] of the `done` jobs that finished
    /// longer than the retention ago. Logs how many it deleted.
    pub fn purge_once(&self) -> Result<u64, Error> {
        let purged = self.queue.purge(self.retention)?;
        if purged > 0 {
            log::info!(
                "manager: purged {purged} done jobs older than {:?}",
                self.retention
            );
        }
        Ok(purged)
    }

    /// Both steps, logging a failure rather than returning it: the loop goes
    /// on, and the next step tries again.
    pub fn run_once(&self) {
        if let Err(error) = self.recover_once() {
            log::error!("manager: recovering expired leases failed: {error}");
        }
        if let Err(error) = self.purge_once() {
            log::error!("manager: purging failed: {error}");
        }
    }

    /// Runs both steps every period until `stop` is set; the first step
    /// comes one period after the start.
    pub fn run(&self, stop: &Stop) {
        while !stop.sleep(self.period) {
            self.run_once();
        }
    }

    /// Runs [`run`](Self::run) on a thread of its own, `outband-manager`,
    /// until [`Running::stop`].
    pub fn spawn(self) -> Running {
        let stop = Arc::new(Stop::new());
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("outband-manager".into())
            .spawn(move || self.run(&signal))
            .expect("spawning a thread");
        Running { stop, thread }
    }
}

/// A maintenance loop running on its own thread, from
/// [`Maintenance::spawn`] or [`Scheduler::spawn`].
#[derive(Debug)]
pub struct Running {
    stop: Arc<Stop>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Asks the loop to stop and waits for its thread: at most the step
    /// under way.
    pub fn stop(self) {
        self.stop.stop();
        if self.thread.join().is_err() {
            log::error!("a maintenance thread panicked");
        }
    }
}

/// When a periodic command's ticks fall: the latest tick at or before a
/// time, if there is one. The daemon implements it with its cron parser; a
/// closure `Fn(SystemTime) -> Option<SystemTime>` is one too.
pub trait Ticks: Send {
    /// The latest tick at or before `now`.
    fn latest(&self, now: SystemTime) -> Option<SystemTime>;
}

impl<F: Fn(SystemTime) -> Option<SystemTime> + Send> Ticks for F {
    fn latest(&self, now: SystemTime) -> Option<SystemTime> {
        self(now)
    }
}

/// A periodic command with its ticks and the last tick seen.
struct Schedule {
    periodic: &'static Periodic,
    ticks: Box<dyn Ticks>,
    last: Option<SystemTime>,
}

impl Schedule {
    /// The latest tick at or before `now`, if it is one this scheduler has
    /// not seen; the first call only records it.
    fn new_tick(&mut self, now: SystemTime) -> Option<SystemTime> {
        let tick = self.ticks.latest(now)?;
        let first = self.last.is_none();
        if self.last.is_some_and(|last| tick <= last) {
            return None;
        }
        self.last = Some(tick);
        (!first).then_some(tick)
    }
}

/// The scheduler of periodic commands.
///
/// Each second, [`tick_once`](Self::tick_once) asks the backend's clock for
/// the time, finds each command's latest tick at or before it, and, for a
/// tick it has not seen, claims the tick in the backend
/// ([`BaseQueue::claim_tick`]); only the one scheduler whose claim wins
/// enqueues the run, however many consumers run one. A scheduler starts from
/// the latest tick, so one that was down does not flood the queue with the
/// ticks it missed.
#[derive(Default)]
pub struct Scheduler {
    schedules: Vec<Schedule>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .schedules
            .iter()
            .map(|s| s.periodic.command.name)
            .collect();
        f.debug_struct("Scheduler")
            .field("commands", &names)
            .finish()
    }
}

impl Scheduler {
    /// A scheduler of no command.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `periodic` on `ticks`.
    pub fn add(&mut self, periodic: &'static Periodic, ticks: impl Ticks + 'static) {
        self.schedules.push(Schedule {
            periodic,
            ticks: Box::new(ticks),
            last: None,
        });
    }

    /// The number of commands scheduled.
    pub fn len(&self) -> usize {
        self.schedules.len()
    }

    /// Whether no command is scheduled.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// One pass: enqueues each periodic command whose new tick this
    /// scheduler wins, on `queue`'s clock.
    pub fn tick_once(&mut self, queue: &dyn BaseQueue) -> Result<(), Error> {
        let now = queue.now()?;
        for schedule in &mut self.schedules {
            let Some(tick) = schedule.new_tick(now) else {
                continue;
            };
            let command = schedule.periodic.command;
            if !queue.claim_tick(command.name, tick)? {
                continue;
            }
            let job = NewJob::new(command.name, crate::codec::encode(&())?)
                .queue(command.queue)
                .priority(command.priority)
                .max_attempts(command.max_attempts);
            let id = queue.enqueue(job)?;
            log::info!(
                "periodic command {} enqueued for tick {} as job {id}",
                command.name,
                Utc(tick)
            );
        }
        Ok(())
    }

    /// Runs [`tick_once`](Self::tick_once) at the start of each second, when
    /// ticks fall due, until `stop` is set. Returns at once when no command
    /// is scheduled.
    pub fn run(&mut self, queue: &dyn BaseQueue, stop: &Stop) {
        if self.is_empty() {
            return;
        }
        log::info!("scheduling {} periodic commands", self.len());
        loop {
            if let Err(error) = self.tick_once(queue) {
                log::error!("scheduling periodic commands failed: {error}");
            }
            let into_second = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let wait = Duration::from_nanos(u64::from(1_000_000_000 - into_second))
                + Duration::from_millis(5);
            if stop.sleep(wait) {
                return;
            }
        }
    }

    /// Runs [`run`](Self::run) on `queue` on a thread of its own,
    /// `outband-periodic`, until [`Running::stop`].
    pub fn spawn(mut self, queue: Arc<dyn BaseQueue>) -> Running {
        let stop = Arc::new(Stop::new());
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("outband-periodic".into())
            .spawn(move || self.run(&*queue, &signal))
            .expect("spawning a thread");
        Running { stop, thread }
    }

    /// The periodic commands of `registry` whose schedules `parse` reads,
    /// each on the ticks it returns; a schedule it refuses is logged and
    /// left out.
    pub fn of_registry<T, E>(registry: &Registry, parse: impl Fn(&str) -> Result<T, E>) -> Self
    where
        T: Ticks + 'static,
        E: std::fmt::Display,
    {
        let mut scheduler = Self::new();
        for &periodic in registry.periodic() {
            match parse(periodic.cron) {
                Ok(ticks) => scheduler.add(periodic, ticks),
                Err(error) => log::error!(
                    "periodic command {}: bad cron `{}`: {error}; it will not be scheduled",
                    periodic.command.name,
                    periodic.cron
                ),
            }
        }
        scheduler
    }
}

/// A time shown as UTC, to the second: `2026-01-31 12:00:05 UTC`.
struct Utc(SystemTime);

impl std::fmt::Display for Utc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(since) = self.0.duration_since(SystemTime::UNIX_EPOCH) else {
            return write!(f, "{:?}", self.0);
        };
        let secs = since.as_secs();
        let (days, in_day) = (secs / 86_400, secs % 86_400);
        // days since the epoch to a civil date (H. Hinnant's algorithm)
        let z = days + 719_468;
        let (era, doe) = (z / 146_097, z % 146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            in_day / 3_600,
            in_day % 3_600 / 60,
            in_day % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobState, MemoryQueue, Outcome};

    fn memory() -> Arc<MemoryQueue> {
        Arc::new(MemoryQueue::new())
    }

    fn job(queue: &str) -> NewJob {
        NewJob::new("c", vec![1]).queue(queue)
    }

    #[test]
    fn recover_once_takes_back_an_expired_lease_and_leaves_a_live_one() {
        let queue = memory();
        let lost = queue.enqueue(job("q").max_attempts(2)).unwrap();
        let spent = queue.enqueue(job("q").max_attempts(1)).unwrap();
        let live = queue.enqueue(job("q")).unwrap();
        // the state a worker that died leaves: running, its lease expired
        assert_eq!(queue.claim("q", 2, Duration::ZERO).unwrap().len(), 2);
        queue.claim("q", 1, Duration::from_secs(60)).unwrap();

        let maintenance = Maintenance::new(queue.clone(), Duration::from_secs(60));
        let recovered = maintenance.recover_once().unwrap();
        assert_eq!(
            recovered,
            Recovered {
                requeued: 1,
                dead: 1
            }
        );
        let state = |id| queue.job(id).unwrap().unwrap();
        assert_eq!(state(lost).state, JobState::Pending);
        assert_eq!(
            state(lost).last_error.as_deref(),
            Some("lease expired on attempt 1 of 2")
        );
        assert_eq!(state(spent).state, JobState::Dead);
        assert_eq!(
            state(spent).last_error.as_deref(),
            Some("lease expired on attempt 1 of 1")
        );
        assert_eq!(state(live).state, JobState::Running);
        assert_eq!(maintenance.recover_once().unwrap(), Recovered::default());
    }

    #[test]
    fn purge_once_deletes_done_jobs_past_the_retention_only() {
        let queue = memory();
        let done = queue.enqueue(job("q")).unwrap();
        let dead = queue.enqueue(job("q")).unwrap();
        let claimed = queue.claim("q", 2, Duration::from_secs(60)).unwrap();
        let finish = Outcome::Done {
            result: None,
            duration: Duration::ZERO,
        };
        queue.complete(&claimed[0].lease, finish).unwrap();
        let bury = Outcome::Dead { error: "x".into() };
        queue.complete(&claimed[1].lease, bury).unwrap();

        let lease = Duration::from_secs(60);
        let keeping = Maintenance::new(queue.clone(), lease).retention(Duration::from_secs(3600));
        assert_eq!(keeping.purge_once().unwrap(), 0, "within the retention");
        let purging = Maintenance::new(queue.clone(), lease).retention(Duration::ZERO);
        assert_eq!(purging.purge_once().unwrap(), 1);
        assert_eq!(queue.job(done).unwrap(), None, "purged");
        assert_eq!(queue.job(dead).unwrap().unwrap().state, JobState::Dead);
    }

    #[test]
    fn the_loop_runs_the_steps_every_period_until_stopped() {
        let queue = memory();
        let id = queue.enqueue(job("q")).unwrap();
        queue.claim("q", 1, Duration::ZERO).unwrap();
        let maintenance = Maintenance::new(queue.clone(), Duration::from_millis(200));
        assert_eq!(maintenance.period(), Duration::from_millis(100));
        let running = maintenance.spawn();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while queue.job(id).unwrap().unwrap().state != JobState::Pending {
            assert!(std::time::Instant::now() < deadline, "never recovered");
            std::thread::sleep(Duration::from_millis(10));
        }
        running.stop();
    }

    #[test]
    fn a_stop_wakes_the_sleeper_at_once() {
        let stop = Arc::new(Stop::new());
        let sleeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || stop.sleep(Duration::from_secs(600)))
        };
        stop.stop();
        assert!(sleeper.join().unwrap(), "woken by the stop");
        assert!(stop.is_stopped());
    }

    fn every_second() -> &'static Periodic {
        static COMMAND: crate::Command = crate::Command {
            name: "tests::every_second",
            queue: "periodic",
            max_attempts: 1,
            priority: 0,
            key: None,
            file: file!(),
            line: line!(),
            run: |_| Ok(None),
        };
        static PERIODIC: Periodic = Periodic {
            command: &COMMAND,
            cron: "* * * * * *",
        };
        &PERIODIC
    }

    /// Whole seconds: the latest tick at or before a time.
    fn seconds(now: SystemTime) -> Option<SystemTime> {
        let since = now.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()))
    }

    fn at(secs: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(secs * 1_000 + millis)
    }

    #[test]
    fn the_first_tick_is_only_recorded_and_missed_ticks_are_not_replayed() {
        let mut schedule = Schedule {
            periodic: every_second(),
            ticks: Box::new(seconds),
            last: None,
        };
        assert_eq!(
            schedule.new_tick(at(1_000, 300)),
            None,
            "a fresh start enqueues nothing"
        );
        assert_eq!(schedule.new_tick(at(1_000, 900)), None, "same tick");
        assert_eq!(schedule.new_tick(at(1_001, 10)), Some(at(1_001, 0)));
        // down for an hour: one tick, the latest, not 3,600
        assert_eq!(schedule.new_tick(at(4_601, 500)), Some(at(4_601, 0)));
        assert_eq!(schedule.new_tick(at(4_601, 800)), None);
    }

    #[test]
    fn two_schedulers_on_one_backend_enqueue_each_tick_once() {
        let queue = MemoryQueue::new();
        let (mut a, mut b) = (Scheduler::new(), Scheduler::new());
        a.add(every_second(), seconds);
        b.add(every_second(), seconds);
        // both see the same new tick, as two consumers on two hosts would
        let before = queue.now().unwrap() - Duration::from_secs(5);
        for scheduler in [&mut a, &mut b] {
            scheduler.schedules[0].last = Some(before);
        }
        a.tick_once(&queue).unwrap();
        b.tick_once(&queue).unwrap();
        assert_eq!(
            queue.len("periodic").unwrap(),
            1,
            "one of the two enqueued the tick"
        );
    }

    #[test]
    fn times_show_as_utc() {
        assert_eq!(Utc(at(0, 0)).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            Utc(at(1_709_210_096, 0)).to_string(),
            "2024-02-29 12:34:56 UTC"
        );
        assert_eq!(
            Utc(at(4_102_444_800, 0)).to_string(),
            "2100-01-01 00:00:00 UTC"
        );
    }
}
