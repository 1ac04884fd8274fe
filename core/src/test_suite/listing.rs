//! Listing jobs: [`BaseQueue::jobs`] gives the jobs of one queue in one
//! state, newest first, filtered by command, a page at a time; walking the
//! pages gives each job once, and a filter that matches few jobs still
//! reaches them through short pages.

use std::collections::HashSet;
use std::sync::Arc;

use super::{HOUR, LEASE, claim_one, done, echo_job, unique_queue};
use crate::{
    BaseQueue, Cancellation, Completion, JobId, JobQuery, JobState, NewJob, Outcome, codec,
};

/// Every page of `query`, walked to the end; each page is checked against
/// the contract on the way.
fn walk(backend: &dyn BaseQueue, mut query: JobQuery) -> Vec<JobId> {
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let page = backend.jobs(&query).expect("jobs");
        assert!(
            page.jobs.len() <= query.page_size(),
            "a page of {} jobs for a limit of {}",
            page.jobs.len(),
            query.page_size()
        );
        for job in &page.jobs {
            assert!(
                query.matches(job),
                "job {} does not match {query:?}",
                job.id
            );
            if let Some(before) = query.before {
                assert!(job.id < before, "job {} is not below {before}", job.id);
            }
            if let Some(&last) = seen.last() {
                assert!(job.id < last, "job {} came after job {last}", job.id);
            }
            seen.push(job.id);
        }
        match page.next {
            Some(next) => {
                if let Some(last) = page.jobs.last() {
                    assert!(next <= last.id, "next {next} is above job {}", last.id);
                }
                query = query.before(next);
            }
            None => return seen,
        }
    }
    panic!("the listing did not end after 10,000 pages");
}

fn listed(backend: &dyn BaseQueue, queue: &str, state: JobState) -> Vec<JobId> {
    walk(backend, JobQuery::new(queue, state))
}

/// Each state lists its own jobs of the queue, newest first, each as
/// `job(id)` gives it: pending ones ready, scheduled or waiting for their
/// key; running; done (wherever the backend keeps them); dead; cancelled.
/// Another queue's jobs and an unknown queue list nothing.
pub fn jobs_are_listed_by_state(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("list-states");
    let other = unique_queue("list-states-other");
    let ids: Vec<JobId> = (0..4)
        .map(|n| backend.enqueue(echo_job(&q, n)).expect("enqueue"))
        .collect();
    let first = claim_one(&**backend, &q, LEASE).expect("a job");
    let second = claim_one(&**backend, &q, LEASE).expect("a job");
    let third = claim_one(&**backend, &q, LEASE).expect("a job");
    assert_eq!(
        [first.job.id, second.job.id, third.job.id],
        [ids[0], ids[1], ids[2]]
    );
    done(&**backend, &first);
    let dead = Outcome::Dead {
        error: "no more".into(),
    };
    assert_eq!(
        backend.complete(&second.lease, dead).expect("complete"),
        Completion::Applied
    );
    let later = backend
        .enqueue(echo_job(&q, 10).when(HOUR))
        .expect("enqueue");
    let cancelled = backend.enqueue(echo_job(&q, 11)).expect("enqueue");
    assert_eq!(
        backend.cancel(cancelled, "not wanted").expect("cancel"),
        Cancellation::Cancelled
    );
    let owner = backend.enqueue(echo_job(&q, 12).key("k")).expect("enqueue");
    let behind = backend.enqueue(echo_job(&q, 13).key("k")).expect("enqueue");
    backend.enqueue(echo_job(&other, 14)).expect("enqueue");

    assert_eq!(
        listed(&**backend, &q, JobState::Pending),
        [behind, owner, later, ids[3]]
    );
    assert_eq!(listed(&**backend, &q, JobState::Running), [third.job.id]);
    assert_eq!(listed(&**backend, &q, JobState::Done), [ids[0]]);
    assert_eq!(listed(&**backend, &q, JobState::Dead), [ids[1]]);
    assert_eq!(listed(&**backend, &q, JobState::Cancelled), [cancelled]);

    for state in JobState::ALL {
        let page = backend.jobs(&JobQuery::new(&q, state)).expect("jobs");
        for job in page.jobs {
            let stored = backend.job(job.id).expect("job").expect("exists");
            assert_eq!(job, stored, "job {} as listed and as read", job.id);
        }
    }
    let unknown = unique_queue("list-states-unknown");
    for state in JobState::ALL {
        let page = backend.jobs(&JobQuery::new(&unknown, state)).expect("jobs");
        assert!(page.jobs.is_empty(), "{state} jobs of an unknown queue");
        assert_eq!(page.next, None, "{state} jobs of an unknown queue");
    }
}

/// Pages of any size walk the listing to its end, each job once and in
/// order, with a command filter or without; a limit of 0 is taken as 1.
pub fn job_pages_walk_every_job_once(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("list-pages");
    let jobs: Vec<NewJob> = (0..30u64)
        .map(|n| {
            let command = if n % 2 == 0 {
                super::echo::NAME
            } else {
                super::fail::NAME
            };
            NewJob::new(command, codec::encode(&(n,)).expect("encodes")).queue(&q)
        })
        .collect();
    let ids = backend.enqueue_many(jobs).expect("enqueue_many");
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    let echoes: Vec<JobId> = ids.iter().step_by(2).rev().copied().collect();

    for limit in [1, 7, 30, 50] {
        let query = JobQuery::new(&q, JobState::Pending).limit(limit);
        assert_eq!(
            walk(&**backend, query.clone()),
            newest_first,
            "limit {limit}"
        );
        let echo = query.command(super::echo::NAME);
        assert_eq!(walk(&**backend, echo), echoes, "limit {limit}, echo only");
    }

    let one = backend
        .jobs(&JobQuery::new(&q, JobState::Pending).limit(0))
        .expect("jobs");
    assert_eq!(one.jobs.len(), 1, "a limit of 0 is taken as 1");
    assert!(one.next.is_some(), "29 more jobs follow");

    let started = JobQuery::new(&q, JobState::Pending).before(ids[10]);
    let below: Vec<JobId> = ids[..10].iter().rev().copied().collect();
    assert_eq!(
        walk(&**backend, started),
        below,
        "a listing started below a job"
    );

    let unknown = JobQuery::new(&q, JobState::Pending).command("app::no-such-command");
    assert!(walk(&**backend, unknown).is_empty());
}

/// A filter that matches one job among more than a page examines still
/// finds it, walking on through short or empty pages.
pub fn sparse_listing_goes_on_below_short_pages(backend: &Arc<dyn BaseQueue>) {
    let q = unique_queue("list-sparse");
    let rare = NewJob::new(super::fail::NAME, codec::encode(&(0u64,)).expect("encodes")).queue(&q);
    let mut jobs = vec![rare];
    jobs.extend((1..=(JobQuery::SCAN as u64 + 500)).map(|n| echo_job(&q, n)));
    let ids = backend.enqueue_many(jobs).expect("enqueue_many");

    let query = JobQuery::new(&q, JobState::Pending)
        .command(super::fail::NAME)
        .limit(10);
    assert_eq!(walk(&**backend, query), [ids[0]]);

    let all = walk(&**backend, JobQuery::new(&q, JobState::Pending).limit(1000));
    assert_eq!(all.len(), ids.len());
    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no job listed twice");
}
