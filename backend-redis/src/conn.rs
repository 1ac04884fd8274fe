//! Connections: a small pool over one server or a cluster, with reconnection
//! under exponential backoff.
//!
//! A call takes an idle connection or opens one. When a call fails because
//! the connection broke, that connection and every idle one are dropped (they
//! led to the same server, which most likely went away) and the error goes to
//! the caller as [`Error::Unavailable`]: nothing is retried behind its back.
//! The next call connects again; while connecting keeps failing, calls fail at
//! once until the backoff (50 ms doubling to 2 s) has passed, so a consumer
//! loop neither hammers a server that is down nor needs restarting when it
//! comes back.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use outband::Error;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{ConnectionLike, RedisError, RedisResult, RetryMethod};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reply may take before the connection counts as broken.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// Where to connect. A handle holds two, the sync pool's and the async
/// connection's, so the size of the cluster client costs nothing worth a box.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Target {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// One connection.
pub(crate) enum Conn {
    Single(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    pub(crate) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Self::Single(con) => con,
            Self::Cluster(con) => &mut **con,
        }
    }

    pub(crate) fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()> {
        match self {
            Self::Single(con) => con.set_read_timeout(Some(timeout)),
            Self::Cluster(con) => con.set_read_timeout(Some(timeout)),
        }
    }
}

#[derive(Default)]
struct BackoffState {
    failures: u32,
    next_attempt: Option<Instant>,
}

/// The reconnection backoff of one server or cluster, shared by the sync
/// pool and the async connection ([`crate::aio`]): both reach the same
/// server, so a failure of either delays the next attempt of both.
#[derive(Default)]
pub(crate) struct Backoff {
    state: Mutex<BackoffState>,
}

impl Backoff {
    /// Fails at once, as unavailable, while the backoff after failed
    /// connection attempts has not passed.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let state = lock(&self.state);
        if let Some(at) = state.next_attempt {
            let now = Instant::now();
            if now < at {
                return Err(Error::unavailable(format!(
                    "Redis is unreachable; reconnecting after {} failed attempts, next in {:?}",
                    state.failures,
                    at - now
                )));
            }
        }
        Ok(())
    }

    /// Records how a connection attempt ended: success resets the backoff,
    /// failure doubles it and is the caller's [`Error::Unavailable`].
    pub(crate) fn record<T>(&self, connected: RedisResult<T>) -> Result<T, Error> {
        let mut state = lock(&self.state);
        match connected {
            Ok(con) => {
                *state = BackoffState::default();
                Ok(con)
            }
            Err(error) => {
                let delay = FIRST_BACKOFF
                    .saturating_mul(1 << state.failures.min(6))
                    .min(MAX_BACKOFF);
                state.failures += 1;
                state.next_attempt = Some(Instant::now() + delay);
                Err(Error::unavailable(error))
            }
        }
    }
}

pub(crate) struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
    backoff: Arc<Backoff>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether an error means the connection can no longer be used.
pub(crate) fn is_broken(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// outband's error for a driver error. A server that answers but cannot
/// serve yet (`LOADING` while it reads its data back after a restart,
/// `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`: what the driver says to wait and
/// retry) is unavailable, as a lost connection is, so callers retry.
pub(crate) fn map_error(error: RedisError) -> Error {
    if is_broken(&error)
        || error.is_cluster_error()
        || matches!(error.retry_method(), RetryMethod::WaitAndRetry)
    {
        Error::unavailable(error)
    } else {
        Error::backend(error)
    }
}

impl Pool {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            idle: Mutex::new(Vec::new()),
            backoff: Arc::new(Backoff::default()),
        }
    }

    /// Where this pool connects to.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The backoff this pool's connection attempts follow.
    pub(crate) fn backoff(&self) -> &Arc<Backoff> {
        &self.backoff
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    fn connect(&self) -> Result<Conn, Error> {
        self.backoff.check()?;
        let connected = match &self.target {
            Target::Single(client) => client
                .get_connection_with_timeout(CONNECT_TIMEOUT)
                .and_then(|con| {
                    con.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
                    con.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
                    Ok(Conn::Single(con))
                }),
            Target::Cluster(client) => client
                .get_connection()
                .map(|con| Conn::Cluster(Box::new(con))),
        };
        self.backoff.record(connected)
    }

    fn checkout(&self) -> Result<Conn, Error> {
        let idle = lock(&self.idle).pop();
        match idle {
            Some(con) => Ok(con),
            None => self.connect(),
        }
    }

    fn checkin(&self, con: Conn) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(con);
        }
    }

    /// Runs `f` on a connection; a broken connection is dropped, with every
    /// idle one.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Conn) -> RedisResult<T>) -> Result<T, Error> {
        let mut con = self.checkout()?;
        match f(&mut con) {
            Ok(value) => {
                self.checkin(con);
                Ok(value)
            }
            Err(error) => {
                if is_broken(&error) {
                    lock(&self.idle).clear();
                } else {
                    self.checkin(con);
                }
                Err(map_error(error))
            }
        }
    }

    /// Runs `f` on a connection whose reads may block up to `block` (blocking
    /// pops); the connection gets its usual timeout back afterwards.
    pub(crate) fn with_blocking<T>(
        &self,
        block: Duration,
        f: impl FnOnce(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, Error> {
        self.with(|con| {
            con.set_read_timeout(block + RESPONSE_TIMEOUT)?;
            let result = f(con);
            con.set_read_timeout(RESPONSE_TIMEOUT)?;
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{ErrorKind, ServerErrorKind};

    #[test]
    fn a_server_still_loading_its_data_is_unavailable() {
        for kind in [
            ServerErrorKind::BusyLoading,
            ServerErrorKind::TryAgain,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ClusterDown,
        ] {
            let error = map_error(RedisError::from((ErrorKind::Server(kind), "not yet")));
            assert!(error.is_retryable(), "{kind:?}: {error}");
        }
        let error = map_error(RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "ERR wrong number of arguments",
        )));
        assert!(!error.is_retryable(), "a command error is final: {error}");
    }
}
