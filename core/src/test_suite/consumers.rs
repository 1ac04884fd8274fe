//! The consumer registry: registrations read back whole, heartbeats that
//! replace them, a ttl that passes, and unregistering.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::async_jobs::wait_for;
use super::unique_queue;
use crate::{BaseQueue, Consumer, ConsumerInfo};

/// A consumer info of this process with an id no other case or run uses.
fn info(queue: &str, threads: usize, concurrency: usize) -> ConsumerInfo {
    let mut info = ConsumerInfo::this_process([queue], threads, concurrency);
    info.id = format!("{}:{}", info.id, unique_queue("consumer"));
    info
}

fn listed(backend: &dyn BaseQueue, id: &str) -> Option<(usize, Consumer)> {
    backend
        .consumers()
        .expect("consumers")
        .into_iter()
        .enumerate()
        .find(|(_, consumer)| consumer.info.id == id)
}

/// Two registered consumers are listed with every field as registered,
/// alive and seen on the backend's clock, in start order; a heartbeat
/// replaces what a consumer said; a registration whose ttl passed is
/// listed gone, after the alive ones; an unregistered consumer is no longer
/// listed. Other consumers may be registered at the same time (processors
/// of other cases), so the case looks only at its own.
pub fn consumers_register_heartbeat_and_go(backend: &Arc<dyn BaseQueue>) {
    if !backend.capabilities().consumer_registry {
        eprintln!("skipped: this backend does not keep a consumer registry");
        return;
    }
    let q = unique_queue("consumers");
    let mut first = info(&q, 3, 0);
    let mut second = info(&unique_queue("consumers-other"), 1, 16);
    second.queues.push(q.clone());
    second.started_at = first.started_at + Duration::from_millis(1);
    second.running = 5;

    let before = backend.now().expect("now") - Duration::from_secs(1);
    backend
        .register_consumer(&first, Duration::from_secs(60))
        .expect("register");
    backend
        .register_consumer(&second, Duration::from_secs(60))
        .expect("register");
    let after = backend.now().expect("now") + Duration::from_secs(1);
    let (first_at, seen) = listed(&**backend, &first.id).expect("the first is listed");
    assert_eq!(seen.info, first, "every field reads back");
    assert!(seen.alive);
    assert!(
        (before..after).contains(&seen.seen_at),
        "seen on the backend's clock"
    );
    let (second_at, seen) = listed(&**backend, &second.id).expect("the second is listed");
    assert_eq!(seen.info, second, "every field reads back");
    assert!(seen.alive);
    assert!(first_at < second_at, "listed by start time");

    first.running = 2;
    backend
        .register_consumer(&first, Duration::from_secs(60))
        .expect("heartbeat");
    let (_, seen) = listed(&**backend, &first.id).expect("still listed");
    assert_eq!(seen.info.running, 2, "a heartbeat replaces the info");
    assert!(seen.alive);
    assert_eq!(
        backend
            .consumers()
            .expect("consumers")
            .iter()
            .filter(|consumer| consumer.info.id == first.id)
            .count(),
        1,
        "a heartbeat adds no second entry"
    );

    let mut brief = info(&q, 1, 0);
    brief.started_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
    backend
        .register_consumer(&brief, Duration::from_millis(50))
        .expect("register");
    wait_for("the brief registration to be gone", || {
        listed(&**backend, &brief.id).is_some_and(|(_, consumer)| !consumer.alive)
    });
    let (gone_at, seen) = listed(&**backend, &brief.id).expect("a gone consumer is listed");
    assert_eq!(seen.info, brief);
    let (first_at, _) = listed(&**backend, &first.id).expect("listed");
    assert!(
        first_at < gone_at,
        "alive consumers come first, whenever the gone one started"
    );

    backend.unregister_consumer(&brief.id).expect("unregister");
    assert!(listed(&**backend, &brief.id).is_none(), "unregistered");
    backend
        .unregister_consumer(&brief.id)
        .expect("unregistering an unknown id changes nothing");
    for id in [&first.id, &second.id] {
        backend.unregister_consumer(id).expect("unregister");
        assert!(listed(&**backend, id).is_none(), "unregistered");
    }
}
