//! Listing jobs a page at a time: [`JobQuery`] and [`JobPage`], what
//! [`BaseQueue::jobs`](crate::BaseQueue::jobs) takes and gives.

use crate::{Job, JobId, JobState};

/// Which jobs [`BaseQueue::jobs`](crate::BaseQueue::jobs) lists: those of
/// one queue in one state, optionally of one command, newest first (by id,
/// descending), a page at a time.
///
/// A page starts below [`before`](Self::before): the first page leaves it
/// out, and each next page passes the [`JobPage::next`] of the last.
///
/// ```
/// use outband::{BaseQueue, JobQuery, JobState, MemoryQueue, NewJob};
///
/// # fn main() -> Result<(), outband::Error> {
/// let backend = MemoryQueue::new();
/// for n in 0..5u32 {
///     backend.enqueue(NewJob::new("app::ping", outband::codec::encode(&(n,))?))?;
/// }
/// let mut query = JobQuery::new("default", JobState::Pending).limit(2);
/// let mut seen = Vec::new();
/// loop {
///     let page = backend.jobs(&query)?;
///     seen.extend(page.jobs.iter().map(|job| job.id));
///     match page.next {
///         Some(next) => query = query.before(next),
///         None => break,
///     }
/// }
/// assert_eq!(seen.len(), 5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobQuery {
    /// The queue whose jobs are listed.
    pub queue: String,
    /// The state the jobs are in.
    pub state: JobState,
    /// Only jobs of this command, if set.
    pub command: Option<String>,
    /// Only jobs whose id is below this one: where the page starts.
    pub before: Option<JobId>,
    /// The most jobs a page holds, from 1 to [`JobQuery::MAX_LIMIT`].
    pub limit: usize,
}

impl JobQuery {
    /// The most jobs one page holds; a larger [`limit`](Self::limit) is cut
    /// to it.
    pub const MAX_LIMIT: usize = 1_000;

    /// The most jobs a backend examines for one page, matching or not. A
    /// page whose filter matches few of the jobs it looks at may come back
    /// short, or empty, with [`JobPage::next`] set: the listing goes on
    /// below it. This bound is what keeps a page's cost independent of
    /// how many jobs the backend holds.
    pub const SCAN: usize = 2_000;

    /// The first page of `queue`'s jobs in `state`, of 50 jobs.
    pub fn new(queue: impl Into<String>, state: JobState) -> Self {
        Self {
            queue: queue.into(),
            state,
            command: None,
            before: None,
            limit: 50,
        }
    }

    /// Lists only jobs of `command` (its registered name, as
    /// [`Job::command`] holds it).
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    /// Starts the page below job `id`: pass the last page's
    /// [`JobPage::next`].
    pub fn before(mut self, id: JobId) -> Self {
        self.before = Some(id);
        self
    }

    /// Holds at most `limit` jobs in a page, at least 1 and at most
    /// [`JobQuery::MAX_LIMIT`].
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, Self::MAX_LIMIT);
        self
    }

    /// Whether `job` is one this query lists, wherever its page starts.
    pub fn matches(&self, job: &Job) -> bool {
        job.queue == self.queue
            && job.state == self.state
            && self.command.as_ref().is_none_or(|c| *c == job.command)
    }

    /// The page size a backend uses: [`limit`](Self::limit) kept between 1
    /// and [`JobQuery::MAX_LIMIT`], whatever the field was set to.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of a listing: the jobs, newest first, and where the next page
/// starts.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs that match, by id descending; at most the query's limit.
    pub jobs: Vec<Job>,
    /// `Some` while older jobs may still match: pass it to
    /// [`JobQuery::before`] for the next page. `None` when the listing is
    /// over.
    pub next: Option<JobId>,
}

impl JobPage {
    /// A page of `jobs`, with the next one starting below `next`.
    pub fn new(jobs: Vec<Job>, next: Option<JobId>) -> Self {
        Self { jobs, next }
    }
}
