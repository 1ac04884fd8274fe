//! The periodic scheduler: [`Scheduler`], its loop and its tick logic, on
//! the [`Ticks`] of each periodic command.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Running, Stop};
use crate::{BaseQueue, Error, NewJob, Periodic, Registry};

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
    /// scheduler wins, on `backend`'s clock.
    pub fn tick_once(&mut self, backend: &dyn BaseQueue) -> Result<(), Error> {
        let now = backend.now()?;
        for schedule in &mut self.schedules {
            let Some(tick) = schedule.new_tick(now) else {
                continue;
            };
            let command = schedule.periodic.command;
            if !backend.claim_tick(command.name, tick)? {
                continue;
            }
            let job = NewJob::new(command.name, crate::codec::encode(&())?)
                .queue(command.queue)
                .priority(command.priority)
                .max_attempts(command.max_attempts);
            let id = backend.enqueue(job)?;
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
    pub fn run(&mut self, backend: &dyn BaseQueue, stop: &Stop) {
        if self.is_empty() {
            return;
        }
        log::info!("scheduling {} periodic commands", self.len());
        loop {
            if let Err(error) = self.tick_once(backend) {
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

    /// Runs [`run`](Self::run) on `backend` on a thread of its own,
    /// `outband-periodic`, until [`Running::stop`].
    pub fn spawn(mut self, backend: Arc<dyn BaseQueue>) -> Running {
        let stop = Arc::new(Stop::new());
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("outband-periodic".into())
            .spawn(move || self.run(&*backend, &signal))
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
    use crate::MemoryQueue;

    fn every_second() -> &'static Periodic {
        static COMMAND: crate::Command = crate::Command {
            name: "tests::every_second",
            queue: "periodic",
            max_attempts: 1,
            priority: 0,
            key: None,
            unique: None,
            concurrency: None,
            rate: None,
            backoff: crate::Backoff::Consumer,
            timeout: None,
            show_args: crate::__private::show_no_args,
            show_result: crate::__private::show_no_result,
            file: file!(),
            line: line!(),
            run: crate::__private::Run::Sync(|_, _| Ok(None)),
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
        let backend = MemoryQueue::new();
        let (mut a, mut b) = (Scheduler::new(), Scheduler::new());
        a.add(every_second(), seconds);
        b.add(every_second(), seconds);
        // both see the same new tick, as two consumers on two hosts would
        let before = backend.now().unwrap() - Duration::from_secs(5);
        for scheduler in [&mut a, &mut b] {
            scheduler.schedules[0].last = Some(before);
        }
        a.tick_once(&backend).unwrap();
        b.tick_once(&backend).unwrap();
        assert_eq!(
            backend.len("periodic").unwrap(),
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
