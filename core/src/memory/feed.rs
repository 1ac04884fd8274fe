//! The cancel feeds of a [`MemoryQueue`](super::MemoryQueue): each open
//! feed has an inbox that a cancel of a running job fills and signals.

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::{CancelFeed, Error, JobId};

/// The ids sent to one feed and not yet taken.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    ids: Mutex<Vec<JobId>>,
    sent: Condvar,
}

/// The inboxes of the feeds open on one backend; a feed dropped drops its
/// inbox, which the next send forgets.
#[derive(Debug, Default)]
pub(super) struct Feeds(Vec<Weak<Inbox>>);

impl Feeds {
    /// A new feed, receiving from now on.
    pub(super) fn open(&mut self) -> MemoryFeed {
        let inbox = Arc::new(Inbox::default());
        self.0.retain(|inbox| inbox.strong_count() > 0);
        self.0.push(Arc::downgrade(&inbox));
        MemoryFeed { inbox }
    }

    /// Sends `id` to every open feed.
    pub(super) fn send(&mut self, id: JobId) {
        self.0.retain(|inbox| match inbox.upgrade() {
            Some(inbox) => {
                lock(&inbox.ids).push(id);
                inbox.sent.notify_all();
                true
            }
            None => false,
        });
    }
}

/// A feed of a [`MemoryQueue`](super::MemoryQueue).
#[derive(Debug)]
pub(super) struct MemoryFeed {
    inbox: Arc<Inbox>,
}

impl CancelFeed for MemoryFeed {
    fn next(&mut self, timeout: Duration) -> Result<Vec<JobId>, Error> {
        let deadline = Instant::now() + timeout;
        let mut ids = lock(&self.inbox.ids);
        while ids.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            ids = self
                .inbox
                .sent
                .wait_timeout(ids, left)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
        Ok(std::mem::take(&mut *ids))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
