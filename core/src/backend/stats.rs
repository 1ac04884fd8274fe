//! Run-time statistics for [`BaseQueue::stats`](crate::BaseQueue::stats):
//! throughput over [`THROUGHPUT_WINDOW`], and the mean, median and 99th
//! percentile of run times, each percentile by nearest rank. A backend that
//! has the run times in process passes them to [`fill_run_times`]; one that
//! computes them where it stores them (in SQL) uses [`throughput`] and
//! [`nearest_rank`], so that every backend reports the same numbers.
//!
//! ```
//! use std::time::Duration;
//! use outband::QueueStats;
//! use outband::backend::stats::{THROUGHPUT_WINDOW, fill_run_times, nearest_rank};
//!
//! let mut stats = QueueStats::default();
//! let run_times = (1..=100).map(Duration::from_millis).collect();
//! // 30 jobs finished in the last THROUGHPUT_WINDOW (a minute)
//! fill_run_times(&mut stats, run_times, 30);
//! assert_eq!(THROUGHPUT_WINDOW, Duration::from_secs(60));
//! assert_eq!(stats.throughput, 0.5);
//! assert_eq!(stats.p50_run_time, Some(Duration::from_millis(50)));
//! assert_eq!(stats.p99_run_time, Some(Duration::from_millis(99)));
//! assert_eq!(stats.mean_run_time, Some(Duration::from_micros(50_500)));
//! // the index of the median among 100 sorted run times
//! assert_eq!(nearest_rank(100, 50), Some(49));
//! ```

use std::time::Duration;

use crate::QueueStats;

/// The window over which [`QueueStats::throughput`] is measured.
pub const THROUGHPUT_WINDOW: Duration = Duration::from_secs(60);

/// Jobs per second, from the jobs finished `done` in the last
/// [`THROUGHPUT_WINDOW`].
pub fn throughput(done_in_window: u64) -> f64 {
    done_in_window as f64 / THROUGHPUT_WINDOW.as_secs_f64()
}

/// The index, among `count` sorted values, of their `pct`th percentile by
/// nearest rank; `None` when there are no values.
pub fn nearest_rank(count: usize, pct: usize) -> Option<usize> {
    (count > 0).then(|| (count.saturating_mul(pct).div_ceil(100)).clamp(1, count) - 1)
}

/// Fills the timing fields of `stats`: the throughput from the jobs finished
/// in the last [`THROUGHPUT_WINDOW`], and the mean, median and 99th
/// percentile of `run_times` (left `None` when there are none).
pub fn fill_run_times(stats: &mut QueueStats, mut run_times: Vec<Duration>, done_in_window: u64) {
    stats.throughput = throughput(done_in_window);
    if run_times.is_empty() {
        return;
    }
    run_times.sort_unstable();
    let total: Duration = run_times.iter().sum();
    let count = u32::try_from(run_times.len()).unwrap_or(u32::MAX);
    stats.mean_run_time = Some(total / count);
    let at = |pct| nearest_rank(run_times.len(), pct).map(|i| run_times[i]);
    stats.p50_run_time = at(50);
    stats.p99_run_time = at(99);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_nearest() {
        assert_eq!(nearest_rank(0, 50), None);
        assert_eq!(nearest_rank(1, 50), Some(0));
        assert_eq!(nearest_rank(1, 99), Some(0));
        assert_eq!(nearest_rank(2, 50), Some(0));
        assert_eq!(nearest_rank(3, 50), Some(1));
        assert_eq!(nearest_rank(100, 99), Some(98));
        assert_eq!(nearest_rank(1000, 99), Some(989));
        assert_eq!(nearest_rank(5, 0), Some(0));
    }

    #[test]
    fn no_run_times_leave_the_timings_empty() {
        let mut stats = QueueStats::default();
        fill_run_times(&mut stats, Vec::new(), 6);
        assert_eq!(stats.throughput, 0.1);
        assert_eq!(stats.mean_run_time, None);
        assert_eq!(stats.p50_run_time, None);
    }

    #[test]
    fn run_times_need_not_be_sorted() {
        let mut stats = QueueStats::default();
        let ms = Duration::from_millis;
        fill_run_times(&mut stats, vec![ms(30), ms(10), ms(20)], 0);
        assert_eq!(stats.mean_run_time, Some(ms(20)));
        assert_eq!(stats.p50_run_time, Some(ms(20)));
        assert_eq!(stats.p99_run_time, Some(ms(30)));
    }
}
