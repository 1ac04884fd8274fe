//! Concurrency and rate limits where the conformance suite does not reach:
//! the running and parked sets in Redis, which a lease recovered by another
//! handle, a cancel and a flush each leave as they should. The scenarios
//! are in `support/limits.rs`; `cluster.rs` runs them on a cluster.

mod support;

use outband_redis::{RedisOptions, RedisQueue};

#[test]
fn a_recovered_lease_gives_its_slot_back_across_handles() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let second = RedisQueue::with_options(
        &support::redis_url(),
        RedisOptions::default().namespace(scoped.namespace.clone()),
    )
    .expect("connects");
    support::limits::a_recovered_lease_gives_its_slot_back(&scoped.backend, &second, "lost", "api");
}

#[test]
fn cancel_and_flush_leave_no_parked_entries() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    support::limits::cancel_and_flush_leave_no_parked_entries(&scoped.backend, "parked", "db");
}

#[test]
fn cancel_and_flush_leave_no_rate_parked_entries() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    support::limits::cancel_and_flush_leave_no_rate_parked_entries(
        &scoped.backend,
        "rated",
        "mail",
    );
}

#[test]
fn racing_claims_keep_the_rate() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let handles: Vec<RedisQueue> = (0..6)
        .map(|_| {
            RedisQueue::with_options(
                &support::redis_url(),
                RedisOptions::default().namespace(scoped.namespace.clone()),
            )
            .expect("connects")
        })
        .collect();
    support::limits::racing_claims_keep_the_rate(&handles, "raced", "api");
}
