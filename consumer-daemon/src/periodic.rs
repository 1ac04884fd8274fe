//! The scheduler of periodic commands.
//!
//! Every consumer runs one (unless `-n`). Each second it asks the backend's
//! clock for the time, finds each periodic command's latest tick at or before
//! it, and, for a tick it has not seen, claims the tick in the backend
//! ([`BaseQueue::claim_tick`]); only the one consumer whose claim wins
//! enqueues the run. A consumer starts from the latest tick, so one that was
//! down does not flood the queue with the ticks it missed.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use croner::Cron;
use outband::{BaseQueue, NewJob, Periodic, Registry};

use crate::consumer::sleep_or_stop;

/// A periodic command with its parsed schedule and the last tick seen.
struct Schedule {
    periodic: &'static Periodic,
    cron: Cron,
    last: Option<DateTime<Utc>>,
}

impl Schedule {
    /// The latest tick at or before `now`, if it is one this scheduler has
    /// not seen; the first call only records it.
    fn new_tick(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tick = self.cron.find_previous_occurrence(&now, true).ok()?;
        let first = self.last.is_none();
        if self.last.is_some_and(|last| tick <= last) {
            return None;
        }
        self.last = Some(tick);
        (!first).then_some(tick)
    }
}

/// Parses the schedules of every periodic command; a bad one is logged and
/// left out.
fn schedules(registry: &Registry) -> Vec<Schedule> {
    registry
        .periodic()
        .iter()
        .filter_map(|&periodic| match periodic.cron.parse::<Cron>() {
            Ok(cron) => Some(Schedule {
                periodic,
                cron,
                last: None,
            }),
            Err(error) => {
                log::error!(
                    "periodic command {}: bad cron `{}`: {error}; it will not be scheduled",
                    periodic.command.name,
                    periodic.cron
                );
                None
            }
        })
        .collect()
}

pub(crate) fn scheduler_loop(queue: &dyn BaseQueue, stop: &(Mutex<bool>, Condvar)) {
    let registry = match Registry::global() {
        Ok(registry) => registry,
        Err(error) => return log::error!("periodic commands disabled: {error}"),
    };
    let mut schedules = schedules(registry);
    if schedules.is_empty() {
        return;
    }
    log::info!("scheduling {} periodic commands", schedules.len());
    loop {
        if let Err(error) = tick_once(queue, &mut schedules) {
            log::error!("scheduling periodic commands failed: {error}");
        }
        // wake at the start of each second, when ticks fall due
        let into_second = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let wait =
            Duration::from_nanos(u64::from(1_000_000_000 - into_second)) + Duration::from_millis(5);
        if sleep_or_stop(stop, wait) {
            return;
        }
    }
}

/// One pass: enqueue each periodic command whose new tick this consumer wins.
fn tick_once(queue: &dyn BaseQueue, schedules: &mut [Schedule]) -> Result<(), outband::Error> {
    let now = DateTime::<Utc>::from(queue.now()?);
    for schedule in schedules {
        let Some(tick) = schedule.new_tick(now) else {
            continue;
        };
        let command = schedule.periodic.command;
        if !queue.claim_tick(command.name, SystemTime::from(tick))? {
            continue;
        }
        let job = NewJob::new(command.name, outband::codec::encode(&())?)
            .queue(command.queue)
            .priority(command.priority)
            .max_attempts(command.max_attempts);
        let id = queue.enqueue(job)?;
        log::info!(
            "periodic command {} enqueued for tick {tick} as job {id}",
            command.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband::MemoryQueue;

    fn every_second() -> &'static Periodic {
        static COMMAND: outband::Command = outband::Command {
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

    fn schedule() -> Schedule {
        let periodic = every_second();
        Schedule {
            periodic,
            cron: periodic.cron.parse().unwrap(),
            last: None,
        }
    }

    fn at(secs: i64, millis: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, millis * 1_000_000).unwrap()
    }

    #[test]
    fn the_first_tick_is_only_recorded_and_missed_ticks_are_not_replayed() {
        let mut schedule = schedule();
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
        let (mut a, mut b) = ([schedule()], [schedule()]);
        // both see the same new tick, as two consumers on two hosts would
        let now = DateTime::<Utc>::from(queue.now().unwrap());
        for s in a.iter_mut().chain(b.iter_mut()) {
            s.last = Some(now - chrono::Duration::seconds(5));
        }
        tick_once(&queue, &mut a).unwrap();
        tick_once(&queue, &mut b).unwrap();
        assert_eq!(
            queue.len("periodic").unwrap(),
            1,
            "one of the two enqueued the tick"
        );
    }

    #[test]
    fn a_bad_cron_is_left_out() {
        assert!("not a cron".parse::<Cron>().is_err());
        assert!("*/5 * * * *".parse::<Cron>().is_ok());
    }
}
