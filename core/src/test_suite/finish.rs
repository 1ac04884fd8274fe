//! Waiting for a job's end: [`BaseQueue::wait_finished`] on a backend that
//! says [`Capabilities::finish_wakeups`](crate::Capabilities) returns as
//! soon as the job ends however it ends, and at once for a job that has
//! ended or is unknown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{LEASE, claim_one, done, echo_job, unique_queue};
use crate::{BaseQueue, Cancellation, Completion, JobId, Outcome};

/// Longer than any test waits: a waiter that returns well before it was
/// woken, not timed out.
const LONG: Duration = Duration::from_secs(120);

/// How long `wait_finished(id, LONG)` took while `finish` ended the job on
/// this thread.
fn woken_after(backend: &Arc<dyn BaseQueue>, id: JobId, finish: impl FnOnce()) -> Duration {
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let start = Instant::now();
            backend.wait_finished(id, LONG).expect("wait_finished");
            start.elapsed()
        });
        // give the waiter time to block; if it has not, it finds the job
        // ended and returns at once, which passes too
        std::thread::sleep(Duration::from_millis(100));
        finish();
        waiter.join().expect("the waiter")
    })
}

/// A waiter wakes when the job it waits for ends `done`, `dead` or
/// `cancelled` (pending or running), and returns at once for a job that
/// has ended or that the backend does not know. A backend without
/// wake-ups is only asked to return after a short timeout.
pub fn wait_finished_wakes_when_the_job_ends(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("wait-finished");
    if !backend.capabilities().finish_wakeups {
        let id = backend.enqueue(echo_job(&q, 0)).expect("enqueue");
        backend
            .wait_finished(id, Duration::from_millis(10))
            .expect("wait_finished");
        return;
    }
    let woken = |what: &str, took: Duration| {
        assert!(
            took < LONG / 2,
            "a waiter for a job that {what} returned after {took:?}, not when it ended"
        );
    };

    let first = backend.enqueue(echo_job(&q, 1)).expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("a job");
    assert_eq!(claimed.job.id, first);
    woken(
        "ended done",
        woken_after(backend, first, || done(&**backend, &claimed)),
    );

    let second = backend.enqueue(echo_job(&q, 2)).expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("a job");
    let dead = || {
        let outcome = Outcome::Dead {
            error: "no more".into(),
        };
        let completed = backend.complete(&claimed.lease, outcome).expect("complete");
        assert_eq!(completed, Completion::Applied);
    };
    woken("ended dead", woken_after(backend, second, dead));

    let third = backend.enqueue(echo_job(&q, 3)).expect("enqueue");
    let cancel = || {
        let cancelled = backend.cancel(third, "not wanted").expect("cancel");
        assert_eq!(cancelled, Cancellation::Cancelled);
    };
    woken("was cancelled pending", woken_after(backend, third, cancel));

    let fourth = backend.enqueue(echo_job(&q, 4)).expect("enqueue");
    let claimed = claim_one(&**backend, &q, LEASE).expect("a job");
    let stopped = || {
        let asked = backend.cancel(fourth, "stop").expect("cancel");
        assert_eq!(asked, Cancellation::Requested);
        let outcome = Outcome::Retry {
            delay: Duration::ZERO,
            error: "stopped".into(),
        };
        let completed = backend.complete(&claimed.lease, outcome).expect("complete");
        assert_eq!(completed, Completion::Applied);
    };
    woken(
        "was cancelled running",
        woken_after(backend, fourth, stopped),
    );

    for (what, id) in [("ended", first), ("is unknown", JobId((1 << 52) - 1))] {
        let start = Instant::now();
        backend.wait_finished(id, LONG).expect("wait_finished");
        woken(what, start.elapsed());
    }
}
