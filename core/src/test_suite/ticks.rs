//! Periodic ticks: each is claimed once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::unique_queue;
use crate::BaseQueue;

/// One tick of a periodic command is claimed by exactly one caller.
pub fn claim_tick_once(backend: &Arc<dyn BaseQueue>) {
    let name = unique_queue("tick");
    let tick = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let winners: usize = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| usize::from(backend.claim_tick(&name, tick).expect("tick"))))
            .collect();
        racers.into_iter().map(|r| r.join().expect("racer")).sum()
    });
    assert_eq!(winners, 1);
    let next = tick + Duration::from_secs(60);
    assert!(
        backend.claim_tick(&name, next).expect("tick"),
        "the next tick is new"
    );
    assert!(!backend.claim_tick(&name, next).expect("tick"));
}

/// `last_tick` gives the latest claimed tick of each command, whatever the
/// order they were claimed in, and `None` for a command never ticked.
pub fn last_tick_is_the_latest_claimed(backend: &Arc<dyn BaseQueue>) {
    let (name, other) = (unique_queue("last-tick"), unique_queue("other-tick"));
    assert_eq!(backend.last_tick(&name).expect("last_tick"), None);
    let at =
        |minutes: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + minutes * 60);
    for minutes in [1, 3, 2] {
        assert!(backend.claim_tick(&name, at(minutes)).expect("tick"));
    }
    assert!(
        !backend.claim_tick(&name, at(3)).expect("tick"),
        "claimed before"
    );
    assert!(backend.claim_tick(&other, at(9)).expect("tick"));
    assert_eq!(backend.last_tick(&name).expect("last_tick"), Some(at(3)));
    assert_eq!(backend.last_tick(&other).expect("last_tick"), Some(at(9)));
}
