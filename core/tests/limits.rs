//! `#[queue_command(concurrency …, rate …)]`: a command's jobs carry their
//! limits, per command or per value of one argument, and the memory backend
//! runs no more of them at once, or sooner, than they allow; a backend that
//! does not enforce limits refuses limited jobs rather than drop the limit.

use std::sync::Arc;
use std::time::Duration;

use outband::{
    BaseQueue, Claimed, Concurrency, ConcurrencySpec, Error, JobId, MemoryQueue, NewJob, RateSpec,
    queue_command,
};

#[queue_command(queue = "limits", concurrency = 2)]
fn call_api(request: u64) {
    let _ = request;
}

#[queue_command(queue = "limits-tenant", concurrency(max = 1, by = tenant))]
fn export(tenant: String, part: u32) {
    let _ = (tenant, part);
}

#[queue_command(queue = "limits-rate", rate = "30/m")]
fn notify(user: u64) {
    let _ = user;
}

#[queue_command(queue = "limits-rate-tenant", rate(limit = "2/h", by = tenant))]
fn report(tenant: String) {
    let _ = tenant;
}

const LEASE: Duration = Duration::from_secs(60);

#[test]
fn limited_commands_run_at_most_their_limit_at_once() {
    let backend = Arc::new(MemoryQueue::new());
    outband::set_default_backend(backend.clone()).unwrap();

    let ids: Vec<JobId> = (0..3).map(|n| call_api(n).unwrap().id()).collect();
    let job = backend.job(ids[0]).unwrap().unwrap();
    let twin = NewJob::new(job.command, job.args).queue("limits");
    let claimed = backend.claim("limits", 10, LEASE).unwrap();
    assert_eq!(ids_of(&claimed), ids[..2], "two at once");
    let unlimited = backend.enqueue(twin).unwrap();
    assert_eq!(
        ids_of(&backend.claim("limits", 10, LEASE).unwrap()),
        vec![unlimited],
        "a job enqueued without the limit is not held back"
    );

    let a1 = export("a".into(), 1).unwrap().id();
    let a2 = export("a".into(), 2).unwrap().id();
    let b1 = export("b".into(), 1).unwrap().id();
    let claimed = backend.claim("limits-tenant", 10, LEASE).unwrap();
    assert_eq!(ids_of(&claimed), vec![a1, b1], "one per tenant");
    let batch = export::enqueue_many([("a".to_owned(), 3)]).unwrap();
    assert!(
        backend
            .claim("limits-tenant", 10, LEASE)
            .unwrap()
            .is_empty()
    );
    assert_eq!(batch.len(), 1, "batches carry the limit too");
    let _ = a2;

    let registry = outband::Registry::global().unwrap();
    let spec = |name: &str| registry.get(name).unwrap().concurrency;
    assert_eq!(
        spec(call_api::NAME),
        Some(ConcurrencySpec { max: 2, by: None })
    );
    assert_eq!(
        spec(export::NAME),
        Some(ConcurrencySpec {
            max: 1,
            by: Some("tenant")
        })
    );
}

#[test]
fn rate_limited_commands_start_a_burst_then_wait_their_turn() {
    let backend = MemoryQueue::new();
    let ids: Vec<JobId> = (0..5)
        .map(|n| notify::enqueue_on(&backend, n).unwrap())
        .collect();
    // 30 a minute: a burst of 3, then one every 2 s
    assert_eq!(
        ids_of(&backend.claim("limits-rate", 10, LEASE).unwrap()),
        ids[..3]
    );
    assert!(backend.claim("limits-rate", 10, LEASE).unwrap().is_empty());

    let a = report::enqueue_on(&backend, "a".into()).unwrap();
    let b = report::enqueue_on(&backend, "b".into()).unwrap();
    report::enqueue_on(&backend, "a".into()).unwrap();
    assert_eq!(
        ids_of(&backend.claim("limits-rate-tenant", 10, LEASE).unwrap()),
        vec![a, b],
        "one turn per tenant"
    );

    let registry = outband::Registry::global().unwrap();
    assert_eq!(
        registry.get(report::NAME).unwrap().rate,
        Some(RateSpec {
            max: 2,
            per: Duration::from_secs(3600),
            by: Some("tenant")
        })
    );
}

#[test]
fn backends_without_limits_refuse_limited_jobs() {
    let backend = Unlimited(MemoryQueue::new());
    let refused = call_api::enqueue_on(&backend, 1);
    assert!(
        matches!(&refused, Err(Error::Backend(why)) if why.to_string().contains("concurrency")),
        "{refused:?}"
    );
    let refused = export::enqueue_many_on(&backend, [("a".to_owned(), 1)]);
    assert!(matches!(refused, Err(Error::Backend(_))), "{refused:?}");
    let refused = notify::enqueue_on(&backend, 1);
    assert!(
        matches!(&refused, Err(Error::Backend(why)) if why.to_string().contains("rate")),
        "{refused:?}"
    );
    assert_eq!(backend.len("limits").unwrap(), 0, "nothing was stored");
    assert_eq!(backend.len("limits-rate").unwrap(), 0, "nothing was stored");

    let zero = NewJob::new("app::x", vec![]).concurrency(Concurrency::new("app::x", 0));
    assert!(matches!(
        MemoryQueue::new().enqueue(zero),
        Err(Error::InvalidJob(_))
    ));
    let empty = NewJob::new("app::x", vec![]).concurrency(Concurrency::new("", 1));
    assert!(matches!(
        MemoryQueue::new().enqueue(empty),
        Err(Error::InvalidJob(_))
    ));
}

fn ids_of(claimed: &[Claimed]) -> Vec<JobId> {
    claimed.iter().map(|c| c.job.id).collect()
}

/// A backend written before concurrency limits: it says nothing of them.
struct Unlimited(MemoryQueue);

impl BaseQueue for Unlimited {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        self.0.enqueue_many(jobs)
    }

    fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error> {
        self.0.claim(queue, max, lease)
    }

    fn heartbeat(
        &self,
        lease: &outband::Lease,
        lease_for: Duration,
    ) -> Result<outband::Heartbeat, Error> {
        self.0.heartbeat(lease, lease_for)
    }

    fn complete(
        &self,
        lease: &outband::Lease,
        outcome: outband::Outcome,
    ) -> Result<outband::Completion, Error> {
        self.0.complete(lease, outcome)
    }

    fn recover_expired(&self) -> Result<outband::Recovered, Error> {
        self.0.recover_expired()
    }

    fn len(&self, queue: &str) -> Result<u64, Error> {
        self.0.len(queue)
    }

    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error> {
        self.0.has_jobs_waiting(queue)
    }

    fn flush(&self, queue: &str) -> Result<u64, Error> {
        self.0.flush(queue)
    }

    fn stats(&self, queue: &str) -> Result<outband::QueueStats, Error> {
        self.0.stats(queue)
    }

    fn queues(&self) -> Result<Vec<String>, Error> {
        self.0.queues()
    }

    fn job(&self, id: JobId) -> Result<Option<outband::Job>, Error> {
        self.0.job(id)
    }

    fn dead_jobs(
        &self,
        queue: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<outband::Job>, Error> {
        self.0.dead_jobs(queue, offset, limit)
    }

    fn retry_dead(&self, id: JobId) -> Result<bool, Error> {
        self.0.retry_dead(id)
    }

    fn delete_dead(&self, id: JobId) -> Result<bool, Error> {
        self.0.delete_dead(id)
    }

    fn cancel(&self, id: JobId, reason: &str) -> Result<outband::Cancellation, Error> {
        self.0.cancel(id, reason)
    }

    fn purge(&self, older_than: Duration) -> Result<u64, Error> {
        self.0.purge(older_than)
    }

    fn claim_tick(&self, name: &str, tick: std::time::SystemTime) -> Result<bool, Error> {
        self.0.claim_tick(name, tick)
    }

    fn now(&self) -> Result<std::time::SystemTime, Error> {
        self.0.now()
    }
}
