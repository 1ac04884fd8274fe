//! How long the multi loop's jobs and its calls to the backend take, as
//! moving averages, and the prefetch they call for
//! ([`Prefetch::Adaptive`](super::Prefetch::Adaptive)).
//!
//! While one call completes jobs and claims the next ones, each thread
//! runs `call time ÷ job time` jobs, and so does each async slot: that many
//! per thread and per slot must be held ahead for none of them to wait on
//! the call. Short jobs on a backend a round trip away call for many; jobs
//! longer than a call call for none. Sync and async jobs are timed apart,
//! since a processor may serve short async jobs beside long sync ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The moving averages, updated without a lock by the threads that time
/// jobs and calls. Two threads updating one average at once may lose one
/// sample: an average only steers the prefetch, never the lease bound.
#[derive(Debug, Default)]
pub(super) struct Pace {
    /// Nanoseconds a sync job runs, 0 until one has run.
    job: AtomicU64,
    /// Nanoseconds an async job's future takes from its first poll to its
    /// end, 0 until one has ended.
    async_job: AtomicU64,
    /// Nanoseconds a call to the backend that claims takes, 0 until one
    /// has returned.
    call: AtomicU64,
}

impl Pace {
    /// A sync job ran for `elapsed`.
    pub(super) fn job(&self, elapsed: Duration) {
        Self::record(&self.job, elapsed);
    }

    /// An async job's future ended `elapsed` after it started.
    pub(super) fn async_job(&self, elapsed: Duration) {
        Self::record(&self.async_job, elapsed);
    }

    /// A call that claimed (and perhaps completed) took `elapsed`.
    pub(super) fn call(&self, elapsed: Duration) {
        Self::record(&self.call, elapsed);
    }

    /// Jobs to hold ahead of `threads` threads and `slots` async slots:
    /// `threads × call ÷ sync job + slots × call ÷ async job`, rounded, at
    /// most `max`; a kind of job not timed yet counts for none, and so does
    /// everything until a call has been timed.
    pub(super) fn ahead(&self, threads: usize, slots: usize, max: usize) -> usize {
        let call = u128::from(self.call.load(Ordering::Relaxed));
        if call == 0 {
            return 0;
        }
        let lanes = |count: usize, job: &AtomicU64| match job.load(Ordering::Relaxed) {
            0 => 0,
            job => {
                let count = u128::try_from(count).unwrap_or(u128::MAX);
                (count.saturating_mul(call) + u128::from(job / 2)) / u128::from(job)
            }
        };
        let ahead = lanes(threads, &self.job).saturating_add(lanes(slots, &self.async_job));
        usize::try_from(ahead).map_or(max, |ahead| ahead.min(max))
    }

    /// Moves `average` an eighth of the way to `sample`; the first sample
    /// sets it. Never 0 once set: 0 means no sample yet.
    fn record(average: &AtomicU64, sample: Duration) {
        let sample = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = average.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        average.store(new.max(1), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_held_ahead_until_jobs_and_calls_were_timed() {
        let pace = Pace::default();
        assert_eq!(pace.ahead(4, 0, 32), 0);
        pace.call(Duration::from_millis(1));
        assert_eq!(pace.ahead(4, 0, 32), 0, "no job has run");
    }

    #[test]
    fn short_jobs_get_the_whole_prefetch_and_long_ones_none() {
        let short = Pace::default();
        short.call(Duration::from_micros(300));
        short.job(Duration::from_micros(2));
        assert_eq!(short.ahead(1, 0, 32), 32, "150 jobs a call, capped");

        let long = Pace::default();
        long.call(Duration::from_micros(300));
        long.job(Duration::from_secs(1));
        assert_eq!(long.ahead(8, 0, 32), 0);

        let even = Pace::default();
        even.call(Duration::from_millis(1));
        even.job(Duration::from_millis(2));
        assert_eq!(
            even.ahead(4, 0, 32),
            2,
            "each thread runs half a job a call"
        );
    }

    #[test]
    fn the_averages_follow_the_samples() {
        let pace = Pace::default();
        pace.call(Duration::from_millis(1));
        pace.job(Duration::from_millis(1));
        assert_eq!(pace.ahead(1, 0, 32), 1);
        for _ in 0..100 {
            pace.job(Duration::from_micros(10));
        }
        assert_eq!(pace.ahead(1, 0, 32), 32, "jobs got short: hold more ahead");
        for _ in 0..100 {
            pace.job(Duration::from_secs(1));
        }
        assert_eq!(pace.ahead(1, 0, 32), 0, "jobs got long: hold none");
    }

    #[test]
    fn short_async_jobs_are_held_ahead_of_their_slots() {
        let pace = Pace::default();
        pace.call(Duration::from_micros(500));
        assert_eq!(pace.ahead(1, 100, 32), 0, "no job has run");
        pace.async_job(Duration::from_micros(5));
        assert_eq!(pace.ahead(1, 100, 32), 32, "async no-ops: all of it");
        assert_eq!(pace.ahead(1, 0, 32), 0, "no slot, no sync job timed");

        let waiting = Pace::default();
        waiting.call(Duration::from_millis(1));
        waiting.async_job(Duration::from_millis(50));
        assert_eq!(
            waiting.ahead(1, 100, 32),
            2,
            "100 slots, each 1/50 of a job a call"
        );
        waiting.job(Duration::from_secs(1));
        assert_eq!(
            waiting.ahead(4, 100, 32),
            2,
            "long sync jobs add nothing to what the slots call for"
        );
    }
}
