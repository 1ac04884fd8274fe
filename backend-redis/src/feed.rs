//! The cancel feed ([`BaseQueue::cancel_feed`](outband::BaseQueue::cancel_feed)):
//! the cancel script publishes the id of each running job it marks on
//! `namespace:cancels`, and a feed is a connection subscribed to it.
//!
//! The driver's sync subscription unsubscribes when it is dropped and
//! borrows its connection, so it cannot live in the feed between two calls
//! of [`next`](CancelFeed::next): a thread of the feed's own, named
//! `outband-redis-cancels`, holds the connection and the subscription, reads
//! each message as it comes and hands the ids over a channel, where they
//! wait for `next`. The thread subscribes before [`open`] returns, so a
//! feed receives every cancel published after it was opened; it ends, with
//! its connection, at its next look (every [`LOOK`]) once the feed is
//! dropped, or after a read fails, which the feed's next call reports.
//!
//! On a cluster the scripts' `PUBLISH` reaches every node, so the feed
//! subscribes on any one: the nodes of the URL in turn, from one feed to the
//! next, until one connects.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::Duration;

use outband::{CancelFeed, Error, JobId};
use redis::{Client, Connection, Msg, RedisResult};

use crate::conn::{Backoff, CONNECT_TIMEOUT, RESPONSE_TIMEOUT, map_error};

/// The name of a feed's thread.
const THREAD_NAME: &str = "outband-redis-cancels";
/// How often a feed's thread looks whether its feed was dropped.
const LOOK: Duration = Duration::from_millis(500);

/// Where feeds subscribe: the server, or each node of a cluster's URL.
pub(crate) struct Subscribers {
    nodes: Vec<Client>,
    /// The node the next feed tries first.
    next: AtomicUsize,
}

impl Subscribers {
    pub(crate) fn new(nodes: Vec<Client>) -> Self {
        Self {
            nodes,
            next: AtomicUsize::new(0),
        }
    }

    /// A connection to the first node that answers, starting one past the
    /// node the last feed started at, so that a node out of reach is not
    /// always tried first.
    fn connect(&self) -> RedisResult<Connection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for step in 0..self.nodes.len() {
            let node = &self.nodes[(start + step) % self.nodes.len()];
            match node.get_connection_with_timeout(CONNECT_TIMEOUT) {
                Ok(con) => {
                    con.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
                    return Ok(con);
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no node to subscribe on"))
        }))
    }
}

/// A feed subscribed to `channel`, under `backoff` (the pool's: the same
/// server).
pub(crate) fn open(
    subscribers: &Subscribers,
    backoff: &Backoff,
    channel: String,
) -> Result<RedisFeed, Error> {
    backoff.check()?;
    let con = backoff.record(subscribers.connect())?;
    let open = Arc::new(AtomicBool::new(true));
    let (sent, ids) = mpsc::channel();
    let (subscribed, confirmed) = mpsc::sync_channel(1);
    let reader = Reader {
        channel,
        open: Arc::clone(&open),
        subscribed,
        sent,
    };
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || reader.run(con))
        .map_err(|error| Error::backend(format!("cannot start {THREAD_NAME}: {error}")))?;
    match confirmed.recv() {
        Ok(Ok(())) => Ok(RedisFeed {
            ids,
            open,
            failed: None,
        }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(Error::backend(format!(
            "{THREAD_NAME} ended before it subscribed"
        ))),
    }
}

/// What a feed's thread holds besides its connection.
struct Reader {
    channel: String,
    /// Cleared when the feed is dropped.
    open: Arc<AtomicBool>,
    /// Where the subscription's outcome goes, once.
    subscribed: SyncSender<Result<(), Error>>,
    /// Where the ids go, and a failure last.
    sent: Sender<Result<JobId, Error>>,
}

impl Reader {
    fn run(self, mut con: Connection) {
        let mut pubsub = con.as_pubsub();
        let subscription = pubsub
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .and_then(|()| pubsub.subscribe(&self.channel))
            .and_then(|()| pubsub.set_read_timeout(Some(LOOK)));
        let subscribed = subscription.is_ok();
        if self
            .subscribed
            .send(subscription.map_err(map_error))
            .is_err()
            || !subscribed
        {
            return;
        }
        while self.open.load(Ordering::Acquire) {
            match pubsub.get_message() {
                Ok(message) => {
                    // anything else published on the channel is not ours
                    let Some(id) = id_of(&message) else { continue };
                    if self.sent.send(Ok(id)).is_err() {
                        return;
                    }
                }
                Err(error) if error.is_timeout() => {}
                Err(error) => {
                    let _ = self.sent.send(Err(map_error(error)));
                    return;
                }
            }
        }
    }
}

fn id_of(message: &Msg) -> Option<JobId> {
    let payload = std::str::from_utf8(message.get_payload_bytes()).ok()?;
    payload.parse().ok().map(JobId)
}

/// A cancel feed of a [`RedisQueue`](crate::RedisQueue).
pub(crate) struct RedisFeed {
    ids: Receiver<Result<JobId, Error>>,
    /// Cleared on drop, which ends the thread at its next look.
    open: Arc<AtomicBool>,
    /// A failure that came after ids a call returned, for the next call.
    failed: Option<Error>,
}

impl Drop for RedisFeed {
    fn drop(&mut self) {
        self.open.store(false, Ordering::Release);
    }
}

impl CancelFeed for RedisFeed {
    fn next(&mut self, timeout: Duration) -> Result<Vec<JobId>, Error> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let first = match self.ids.recv_timeout(timeout) {
            Ok(first) => first?,
            Err(RecvTimeoutError::Timeout) => return Ok(Vec::new()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::unavailable(format!(
                    "{THREAD_NAME} ended: the subscription was lost"
                )));
            }
        };
        let mut ids = vec![first];
        while let Ok(next) = self.ids.try_recv() {
            match next {
                Ok(id) => ids.push(id),
                Err(error) => {
                    self.failed = Some(error);
                    break;
                }
            }
        }
        Ok(ids)
    }
}
