//! How a processor is set up: [`ProcessorConfig`], and the [`RetryPolicy`]
//! that spaces a failed job's attempts.

use std::time::Duration;

/// How long to wait before retrying a failed attempt: exponential, capped,
/// with jitter so that jobs failing together do not retry together.
///
/// The delay after attempt `n` (1-based) is `base × 2ⁿ⁻¹`, capped at `max`,
/// then multiplied by a random factor in `[1 − jitter, 1 + jitter]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The delay after the first failed attempt. Default 1 s.
    pub base: Duration,
    /// The longest delay. Default 1 h.
    pub max: Duration,
    /// Relative jitter, between 0 and 1. Default 0.25.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl RetryPolicy {
    /// Retries at once: for tests.
    pub fn immediate() -> Self {
        Self {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// The delay before the attempt after attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let delay = self.base.saturating_mul(1 << exponent).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        delay.mul_f64(1.0 - jitter + 2.0 * jitter * fastrand::f64())
    }
}

/// A command's own spacing of retries, from `#[queue_command(backoff = "…")]`;
/// without one, the consumer's [`RetryPolicy`] applies.
///
/// | option | variant | delay after attempt `n` |
/// |---|---|---|
/// | none given | [`Consumer`](Self::Consumer) | the consumer's [`RetryPolicy`] ([`ProcessorConfig::retry`]) |
/// | `backoff = "exponential(10s, 1h)"` | [`Exponential`](Self::Exponential) | `base × 2ⁿ⁻¹`, capped at `max`, with the consumer's jitter |
/// | `backoff = "fixed(30s)"` | [`Fixed`](Self::Fixed) | the same delay every time, no jitter |
/// | `backoff = "none"` | [`None`](Self::None) | none: retried at once |
///
/// Durations take humantime's units (`500ms`, `30s`, `5m`, `2h`, `1d`,
/// `1m 30s`). A [`Fail::retry_after`](crate::Fail::retry_after) delay
/// overrides the backoff for its attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backoff {
    /// The consumer's [`RetryPolicy`].
    #[default]
    Consumer,
    /// Doubles per attempt from `base`, up to `max`, with the consumer's
    /// jitter.
    Exponential {
        /// The delay after the first failed attempt.
        base: Duration,
        /// The longest delay.
        max: Duration,
    },
    /// The same delay after every failed attempt.
    Fixed(Duration),
    /// Retries at once.
    None,
}

impl Backoff {
    /// The delay before the attempt after attempt `attempt` (1-based), with
    /// `consumer` as the consumer's policy.
    pub fn delay(&self, attempt: u32, consumer: &RetryPolicy) -> Duration {
        match *self {
            Self::Consumer => consumer.delay(attempt),
            Self::Exponential { base, max } => RetryPolicy {
                base,
                max,
                jitter: consumer.jitter,
            }
            .delay(attempt),
            Self::Fixed(delay) => delay,
            Self::None => Duration::ZERO,
        }
    }
}

/// How many jobs a [`MultiProcessor`](crate::MultiProcessor) claims ahead
/// of its threads, so that a thread that finishes takes its next job at once
/// while its outcome is completed, and one call to the backend serves many
/// jobs. Either way, [`max`](Self::max) counts in the crash bound: a
/// consumer killed with its leases held makes at most `max_threads +
/// prefetch.max() + concurrency` jobs run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// Claims ahead as many jobs as the threads and the async slots finish
    /// during one call to the backend, up to `max`: `max_threads × call
    /// time ÷ sync job time + concurrency × call time ÷ async job time`,
    /// rounded, from moving averages of each (an async job's time runs from
    /// its future's start to its end, awaits included). Short jobs on a
    /// backend a round trip away get the whole `max`, and one call serves
    /// many of them; jobs that take longer than a call get none, so a slow
    /// job never waits behind another on a busy consumer while an idle one
    /// could run it. It starts at none, until jobs have run.
    Adaptive {
        /// The most jobs claimed ahead.
        max: usize,
    },
    /// Always claims up to this many jobs ahead, whatever their length.
    Fixed(usize),
}

impl Prefetch {
    /// The default adaptive prefetch's most jobs claimed ahead.
    pub const DEFAULT_MAX: usize = 32;

    /// The most jobs claimed ahead: what the crash bound counts.
    pub const fn max(self) -> usize {
        match self {
            Self::Adaptive { max } | Self::Fixed(max) => max,
        }
    }
}

impl Default for Prefetch {
    fn default() -> Self {
        Self::Adaptive {
            max: Self::DEFAULT_MAX,
        }
    }
}

/// Settings shared by both processors.
#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// The queues to claim from, in turn. Empty (the default) means every
    /// queue that has a registered command, or `default` if there is none.
    pub queues: Vec<String>,
    /// The idle wait after a claim that found nothing. Default 1 s.
    pub wait_time: Duration,
    /// Each further empty claim multiplies the idle wait by this factor, up to
    /// `max_wait_time`; a claimed job resets it (the djutils consumer's `-b`).
    /// Default 1: a steady `wait_time`.
    pub wait_backoff: f64,
    /// The longest idle wait when `wait_backoff` grows it. Default 60 s.
    pub max_wait_time: Duration,
    /// How long a claim leases a job; heartbeats extend it. Default 30 s.
    pub lease: Duration,
    /// Jobs the [`MultiProcessor`](crate::MultiProcessor) runs at once.
    /// Default 5.
    pub max_threads: usize,
    /// Jobs the [`MultiProcessor`](crate::MultiProcessor) may hold claimed
    /// beyond one per thread, so that the next jobs are claimed while the
    /// last ones run (Celery's prefetch): see [`Prefetch`]. Default
    /// [`Prefetch::Adaptive`] up to [`Prefetch::DEFAULT_MAX`] (32): the
    /// processor claims ahead only as many jobs as its threads finish while
    /// a call to the backend is in flight, none for jobs longer than a
    /// call. A busy processor completes jobs and claims up to
    /// `max_threads + prefetch` jobs per call, at the cost of up to
    /// [`Prefetch::max`] more jobs run again after a crash. Prefetched jobs are heartbeated
    /// like running ones, and run before a stop ends, or are released back
    /// to the queue with the running ones.
    pub prefetch: Prefetch,
    /// Async jobs (of `async fn` commands) a started processor runs at once
    /// on its async runtime, apart from its threads: a job waiting on I/O
    /// holds a slot, not a thread. Default 100. It counts in the lease bound
    /// only when the processor serves an async command (with outband's
    /// `runtime` feature): the most leases a processor holds is
    /// `max_threads + prefetch + concurrency`, with `concurrency` taken as 0
    /// when none of its queues has an async command, and `prefetch` its
    /// [`max`](Prefetch::max).
    pub concurrency: usize,
    /// The worker threads of the async runtime that runs async jobs.
    /// Default 1: async jobs wait on I/O, and the claims and completions
    /// run on the processor's own threads. Raise it for async commands
    /// that compute between their awaits.
    pub async_threads: usize,
    /// How many calls that complete jobs (each claiming the next jobs as
    /// well) the [`MultiProcessor`](crate::MultiProcessor) may have in
    /// flight at once; each completes up to its share of the leases. With 2, while one call waits for the
    /// backend, the workers run the jobs the other brought and their
    /// outcomes are gathered for the next call, so the backend's time and
    /// the processor's overlap; 1 makes one call at a time, serving all the
    /// leases. Default `None`: as the backend's
    /// [`capabilities`](crate::BaseQueue::capabilities) say
    /// ([`Capabilities::default_completers`](crate::Capabilities::default_completers)),
    /// 2 on Redis, PostgreSQL and MySQL, 1 on SQLite, whose writes go one at
    /// a time. It changes neither the lease bound nor what a crash makes run
    /// again.
    pub completers: Option<usize>,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// How long a sync job may run past its timeout, its context
    /// cancelled, before its attempt is recorded as failed (`timed out
    /// after …`) while its thread is left to return. Default 5 s. Async jobs
    /// get none: their future is dropped at the timeout.
    pub timeout_grace: Duration,
    /// Whether [`start`](crate::Processor::start) also runs
    /// [`Maintenance`](crate::maintenance::Maintenance) on the processor's
    /// backend until the processor stops: every half lease, expired leases
    /// are taken back and `done` jobs past `retention` purged, so that
    /// a crashed worker's jobs run again without the daemon. Safe with any
    /// number of processors on one backend. Default `true`; off for tests
    /// that take those steps themselves.
    pub maintenance: bool,
    /// How long the maintenance keeps `done` jobs. Default 7 days
    /// ([`DEFAULT_RETENTION`](crate::maintenance::DEFAULT_RETENTION)).
    pub retention: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            wait_time: Duration::from_secs(1),
            wait_backoff: 1.0,
            max_wait_time: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            max_threads: 5,
            prefetch: Prefetch::default(),
            concurrency: 100,
            async_threads: 1,
            completers: None,
            retry: RetryPolicy::default(),
            timeout_grace: Duration::from_secs(5),
            maintenance: true,
            retention: crate::maintenance::DEFAULT_RETENTION,
        }
    }
}

impl ProcessorConfig {
    /// Sets the queues to claim from.
    #[must_use]
    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the longest idle wait between claims.
    #[must_use]
    pub fn wait_time(mut self, wait_time: Duration) -> Self {
        self.wait_time = wait_time;
        self
    }

    /// Grows the idle wait by `factor` after each empty claim, up to `max`:
    /// polling backends then poll less often while the queue stays empty.
    /// Backends that wake a waiting consumer still wake it at once.
    #[must_use]
    pub fn wait_backoff(mut self, factor: f64, max: Duration) -> Self {
        self.wait_backoff = factor;
        self.max_wait_time = max;
        self
    }

    /// The idle wait after `idle` empty claims in a row before this one.
    pub(super) fn idle_wait_time(&self, idle: i32) -> Duration {
        if idle == 0 {
            return self.wait_time;
        }
        let grown = self.wait_time.as_secs_f64() * self.wait_backoff.max(1.0).powi(idle);
        Duration::from_secs_f64(grown.min(self.max_wait_time.as_secs_f64())).max(self.wait_time)
    }

    /// Sets the lease.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets how many jobs the multi processor runs at once.
    #[must_use]
    pub fn max_threads(mut self, max_threads: usize) -> Self {
        self.max_threads = max_threads;
        self
    }

    /// Sets a fixed prefetch: the multi processor holds up to `prefetch`
    /// jobs claimed beyond one per thread whatever their length, as Celery
    /// does. See [`prefetch`](Self::prefetch); [`Prefetch::Adaptive`] is the
    /// default.
    #[must_use]
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = Prefetch::Fixed(prefetch);
        self
    }

    /// Sets an adaptive prefetch of at most `max` jobs: see [`Prefetch::Adaptive`].
    #[must_use]
    pub fn adaptive_prefetch(mut self, max: usize) -> Self {
        self.prefetch = Prefetch::Adaptive { max };
        self
    }

    /// Sets how many async jobs a started processor runs at once: see
    /// [`concurrency`](Self::concurrency).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the worker threads of the async runtime: see
    /// [`async_threads`](Self::async_threads).
    #[must_use]
    pub fn async_threads(mut self, async_threads: usize) -> Self {
        self.async_threads = async_threads;
        self
    }

    /// Sets how many completing calls the multi processor may have in flight
    /// at once: see [`completers`](Self::completers).
    #[must_use]
    pub fn completers(mut self, completers: usize) -> Self {
        self.completers = Some(completers);
        self
    }

    /// Sets the backoff between attempts.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how long a sync job may overrun its timeout: see
    /// [`timeout_grace`](Self::timeout_grace).
    #[must_use]
    pub fn timeout_grace(mut self, grace: Duration) -> Self {
        self.timeout_grace = grace;
        self
    }

    /// Sets whether a started processor runs the maintenance: see
    /// [`maintenance`](Self::maintenance).
    #[must_use]
    pub fn maintenance(mut self, maintenance: bool) -> Self {
        self.maintenance = maintenance;
        self
    }

    /// Sets how long the maintenance keeps `done` jobs.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=6).map(|a| policy.delay(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(
            policy.delay(u32::MAX),
            Duration::from_secs(10),
            "no overflow"
        );
        assert_eq!(RetryPolicy::immediate().delay(3), Duration::ZERO);
    }

    #[test]
    fn a_commands_backoff_overrides_the_consumers_policy() {
        let consumer = RetryPolicy {
            base: Duration::from_secs(3),
            max: Duration::from_secs(100),
            jitter: 0.0,
        };
        assert_eq!(
            Backoff::Consumer.delay(2, &consumer),
            Duration::from_secs(6)
        );
        let exponential = Backoff::Exponential {
            base: Duration::from_millis(500),
            max: Duration::from_secs(3),
        };
        let delays: Vec<u128> = (1..=5)
            .map(|a| exponential.delay(a, &consumer).as_millis())
            .collect();
        assert_eq!(delays, vec![500, 1000, 2000, 3000, 3000]);
        let fixed = Backoff::Fixed(Duration::from_secs(30));
        assert_eq!(fixed.delay(1, &consumer), Duration::from_secs(30));
        assert_eq!(
            fixed.delay(9, &RetryPolicy::default()),
            Duration::from_secs(30)
        );
        assert_eq!(Backoff::None.delay(4, &consumer), Duration::ZERO);
    }

    #[test]
    fn the_idle_wait_grows_by_its_factor_up_to_its_cap() {
        let config = ProcessorConfig::default()
            .wait_time(Duration::from_millis(100))
            .wait_backoff(2.0, Duration::from_millis(500));
        let waits: Vec<u128> = (0..6)
            .map(|i| config.idle_wait_time(i).as_millis())
            .collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500, 500]);
        let steady = ProcessorConfig::default();
        assert_eq!(
            steady.idle_wait_time(50),
            Duration::from_secs(1),
            "factor 1 keeps wait_time"
        );
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_varies() {
        let policy = RetryPolicy {
            base: Duration::from_secs(8),
            ..RetryPolicy::default()
        };
        let delays: Vec<Duration> = (0..200).map(|_| policy.delay(1)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(6) && *d <= Duration::from_secs(10))
        );
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jitter spreads retries"
        );
    }
}
