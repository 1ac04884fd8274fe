//! Unique jobs where the conformance suite does not reach: the key's
//! mapping in Redis, which a purge drops once its holder's record is gone,
//! and which a second handle on the namespace finds; awaited batches refuse
//! unique jobs.

mod support;

use std::time::Duration;

use outband::test_suite::echo;
use outband::{
    AsyncEnqueue, BaseQueue, Enqueued, Error, JobId, NewJob, Outcome, Unique, UniqueUntil,
};
use outband_redis::{RedisOptions, RedisQueue};

const LEASE: Duration = Duration::from_secs(60);

fn unique_job(queue: &str, key: &str, until: UniqueUntil) -> NewJob {
    NewJob::new(
        echo::NAME,
        outband::codec::encode(&(1u64,)).expect("encodes"),
    )
    .queue(queue)
    .unique(Unique::new(key, until))
}

fn fresh(enqueued: Enqueued) -> JobId {
    assert!(!enqueued.duplicate, "{enqueued:?} is a duplicate");
    enqueued.id
}

/// The holder's id under the key, as Redis keeps it.
fn mapped(backend: &RedisQueue, key: &str) -> Option<u64> {
    let map = outband_redis::unique_map_of(backend, key);
    outband_redis::with_connection(backend, |con| {
        redis::cmd("HGET").arg(&map).arg(key).query(con)
    })
    .expect("HGET")
}

/// A done job holds its key for the window until a purge deletes it: then
/// the purge forgets the key, and the next job takes it. A flushed pending
/// holder frees its key at once, and the next purge forgets its mapping.
#[test]
fn a_purged_or_flushed_holder_frees_its_key() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let backend = &scoped.backend;
    let hour = UniqueUntil::FinishedFor(Duration::from_secs(3600));
    let first = fresh(
        backend
            .enqueue_unique(unique_job("purged", "app::echo:1", hour))
            .expect("enqueue_unique"),
    );
    assert_eq!(mapped(backend, "app::echo:1"), Some(first.0));
    let claimed = backend.claim("purged", 1, LEASE).expect("claim").remove(0);
    let done = Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    };
    backend.complete(&claimed.lease, done).expect("complete");
    assert_eq!(
        backend
            .enqueue_unique(unique_job("purged", "app::echo:1", hour))
            .expect("enqueue_unique"),
        Enqueued::duplicate_of(first)
    );
    assert_eq!(backend.purge(Duration::ZERO).expect("purge"), 1);
    assert_eq!(
        mapped(backend, "app::echo:1"),
        None,
        "the purge forgot the key"
    );
    let second = fresh(
        backend
            .enqueue_unique(unique_job("purged", "app::echo:1", hour))
            .expect("enqueue_unique"),
    );
    assert_ne!(second, first);

    assert_eq!(backend.flush("purged").expect("flush"), 1);
    assert_eq!(mapped(backend, "app::echo:1"), Some(second.0));
    let third = fresh(
        backend
            .enqueue_unique(unique_job("purged", "app::echo:1", hour))
            .expect("enqueue_unique"),
    );
    assert_eq!(backend.flush("purged").expect("flush"), 1);
    backend.purge(Duration::ZERO).expect("purge");
    assert_eq!(mapped(backend, "app::echo:1"), None, "{third} was flushed");
}

/// The key lives in Redis, not in the handle: another handle on the same
/// namespace finds its holder.
#[test]
fn the_key_holds_for_a_second_handle() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let first = fresh(
        scoped
            .backend
            .enqueue_unique(unique_job("shared", "app::echo:2", UniqueUntil::Finished))
            .expect("enqueue_unique"),
    );
    let other = RedisQueue::with_options(
        &support::redis_url(),
        RedisOptions::default().namespace(scoped.namespace.clone()),
    )
    .expect("url");
    assert_eq!(
        other
            .enqueue_unique(unique_job(
                "elsewhere",
                "app::echo:2",
                UniqueUntil::Finished
            ))
            .expect("enqueue_unique"),
        Enqueued::duplicate_of(first)
    );
    assert_eq!(other.len("elsewhere").expect("len"), 0);
}

/// The awaited enqueue keeps `enqueue_many`'s contract: a unique job is
/// refused there, as an invalid job, and nothing is stored (awaited unique
/// enqueues go to `enqueue_unique` on the blocking pool).
#[tokio::test]
async fn awaited_batches_refuse_unique_jobs() {
    let Some(scoped) = support::test_queue(RedisOptions::default()) else {
        return;
    };
    let job = unique_job("awaited", "app::echo:3", UniqueUntil::Finished);
    let refused = scoped.backend.enqueue_many_async(vec![job]).await;
    assert!(matches!(refused, Err(Error::InvalidJob(_))), "{refused:?}");
    assert_eq!(scoped.backend.len("awaited").expect("len"), 0);
}
