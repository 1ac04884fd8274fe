//! Ordering keys: one job of a key at a time, in enqueue order.

use std::sync::Arc;
use std::time::Duration;

use super::{HOUR, LEASE, claim_ids, claim_one, done, echo_job, unique_queue};
use crate::{BaseQueue, Claimed, JobId, Outcome};

/// Jobs with one ordering key run one at a time, in enqueue order, even
/// across retries; other keys do not wait.
pub fn ordering_key_exclusion_and_order(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("keys");
    let a1 = backend.enqueue(echo_job(&q, 1).key("a")).expect("enqueue");
    let a2 = backend
        .enqueue(echo_job(&q, 2).key("a").priority(10))
        .expect("enqueue");
    let b1 = backend.enqueue(echo_job(&q, 3).key("b")).expect("enqueue");
    let a3 = backend.enqueue(echo_job(&q, 4).key("a")).expect("enqueue");
    let free = backend.enqueue(echo_job(&q, 5)).expect("enqueue");

    let first: Vec<Claimed> = backend.claim(&q, 10, LEASE).expect("claim");
    let ids: Vec<JobId> = first.iter().map(|c| c.job.id).collect();
    assert_eq!(
        ids,
        vec![a1, b1, free],
        "one job per key; priority does not jump the key's line"
    );
    assert!(
        claim_ids(&**backend, &q, 10).is_empty(),
        "a2 waits while a1 runs"
    );

    done(&**backend, &first[0]);
    let a2_claim = claim_one(&**backend, &q, LEASE).expect("a2 after a1");
    assert_eq!(a2_claim.job.id, a2);
    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "again".into(),
    };
    backend.complete(&a2_claim.lease, retry).expect("complete");
    let a2_again = claim_one(&**backend, &q, LEASE).expect("a retried job keeps its place");
    assert_eq!(a2_again.job.id, a2, "a3 must not overtake a retried a2");
    done(&**backend, &a2_again);
    assert_eq!(claim_ids(&**backend, &q, 10), vec![a3]);

    // an earlier scheduled job owns its key; cancelling it lets the next run
    let k1 = backend
        .enqueue(echo_job(&q, 6).key("k").when(HOUR))
        .expect("enqueue");
    let k2 = backend.enqueue(echo_job(&q, 7).key("k")).expect("enqueue");
    assert!(
        claim_ids(&**backend, &q, 10).is_empty(),
        "k2 waits behind scheduled k1"
    );
    assert_eq!(
        backend.cancel(k1, "not wanted").expect("cancel"),
        crate::Cancellation::Cancelled
    );
    assert_eq!(claim_ids(&**backend, &q, 10), vec![k2]);

    // a dead job releases its key
    let d1 = backend.enqueue(echo_job(&q, 8).key("d")).expect("enqueue");
    let d2 = backend.enqueue(echo_job(&q, 9).key("d")).expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("claimed");
    assert_eq!(claimed.job.id, d1);
    backend
        .complete(&claimed.lease, Outcome::Dead { error: "x".into() })
        .expect("complete");
    assert_eq!(claim_ids(&**backend, &q, 10), vec![d2]);
}
