//! The periodic commands' schedules, read with the cron parser.
//!
//! Every consumer runs a scheduler (unless `-n`): core's
//! [`outband::maintenance::Scheduler`], which owns the loop and the tick
//! logic (one consumer per tick enqueues the run, however many run). This
//! module gives it each command's ticks from its cron expression.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use croner::Cron;
use outband::Registry;
use outband::maintenance::{Scheduler, Ticks};

/// A cron schedule's ticks.
struct CronTicks(Cron);

impl Ticks for CronTicks {
    fn latest(&self, now: SystemTime) -> Option<SystemTime> {
        let now = DateTime::<Utc>::from(now);
        let tick = self.0.find_previous_occurrence(&now, true).ok()?;
        Some(SystemTime::from(tick))
    }
}

/// The scheduler of this binary's periodic commands; `None` when it has
/// none, or its registry could not be built (logged). A bad cron is logged
/// and left out.
pub(crate) fn scheduler() -> Option<Scheduler> {
    let registry = match Registry::global() {
        Ok(registry) => registry,
        Err(error) => {
            log::error!("periodic commands disabled: {error}");
            return None;
        }
    };
    let scheduler = Scheduler::of_registry(registry, |cron| cron.parse::<Cron>().map(CronTicks));
    (!scheduler.is_empty()).then_some(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(secs * 1_000 + millis)
    }

    #[test]
    fn a_cron_gives_its_latest_tick_at_or_before_a_time() {
        let every_second = CronTicks("* * * * * *".parse().unwrap());
        assert_eq!(every_second.latest(at(1_000, 300)), Some(at(1_000, 0)));
        assert_eq!(every_second.latest(at(1_001, 0)), Some(at(1_001, 0)));
        let every_five_minutes = CronTicks("*/5 * * * *".parse().unwrap());
        assert_eq!(every_five_minutes.latest(at(1_000, 0)), Some(at(900, 0)));
    }

    #[test]
    fn a_bad_cron_is_left_out() {
        assert!("not a cron".parse::<Cron>().is_err());
        assert!("*/5 * * * *".parse::<Cron>().is_ok());
    }
}
