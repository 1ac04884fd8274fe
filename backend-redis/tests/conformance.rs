//! The conformance suite of `outband::test_suite` against the Redis at
//! `REDIS_URL`, each case in a namespace of its own.

mod support;

use std::sync::Arc;

use outband::BaseQueue;
use outband_redis::RedisOptions;

/// One `#[test]` per case, like `outband::conformance_tests!`, but skipping
/// (with a notice) when the server is unreachable and not required.
macro_rules! redis_conformance {
    ($($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let Some(scoped) = support::test_queue(RedisOptions::default()) else { return };
                let queue: Arc<dyn BaseQueue> = scoped.queue.clone();
                outband::test_suite::$case(&queue);
            }
        )*

        #[test]
        fn every_case_is_run() {
            let generated = [$(stringify!($case)),*];
            let listed: Vec<&str> = outband::test_suite::CASES.iter().map(|(name, _)| *name).collect();
            assert_eq!(generated.as_slice(), listed.as_slice());
        }
    };
}

redis_conformance! {
    fifo_order priority_order batch_claim_order no_double_claim enqueue_many_all_or_nothing
    lease_expiry_and_recovery heartbeat_extends_and_fences release_does_not_count_attempt
    retry_backoff_then_dead ordering_key_exclusion_and_order scheduled_run_at
    cancel_flush_len_stats dead_letter_list_retry_delete purge_done_only
    undecodable_arguments_dead_at_once unknown_command_dead_after_attempts
    panicking_command_retried_then_dead results_are_stored job_timings claim_tick_once
}
