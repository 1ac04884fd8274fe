//! Awaited enqueues over a native async connection: [`AsyncEnqueue`] for
//! [`RedisQueue`], which [`outband::Enqueue`] uses; and awaited waits for a
//! job's end, on connections of their own.
//!
//! An awaited enqueue sends exactly what
//! [`BaseQueue::enqueue_many`](outband::BaseQueue::enqueue_many) sends
//! (the same validation, `SADD` of new queue names and script call, built by
//! the same code), over one connection shared by every awaiting task: a
//! multiplexed connection, which pipelines the requests of all of them on
//! one socket, or a cluster connection, which routes each script call to the
//! node of its slot.
//!
//! # A runtime of the backend's own
//!
//! A redis-rs async connection is driven by a task spawned on the runtime
//! that opened it, and dies with that runtime; and redis-rs times replies
//! out with tokio's timer in the task that sends the request. Callers,
//! though, await enqueues on runtimes that come and go (every
//! `#[tokio::test]` builds one), with or without timers, or on no tokio
//! runtime at all. So the connection is opened, and every request sent, on
//! a runtime of the backend's own: one worker thread named
//! `outband-redis-io`, started by the first awaited enqueue (a program that
//! never awaits one never starts it) and shut down, without waiting, when
//! the [`RedisQueue`] is dropped. The caller's future only waits for the
//! request's task to finish, which any executor can do, and never blocks
//! its thread: it makes no sync call and holds no lock across an `.await`.
//!
//! # Awaited waits for a job's end
//!
//! [`AsyncEnqueue::wait_finished_async`], which an awaited
//! `JobHandle::result` uses, sends what
//! [`BaseQueue::wait_finished`](outband::BaseQueue::wait_finished) sends (the
//! script that registers the waiter, then the blocking pop), as a task on the
//! same runtime, but not over the shared connection: a blocking pop there
//! would hold up every request queued behind it for as long as it blocks.
//! Each wait takes a connection of its own, reused by later waits (up to
//! [`MAX_IDLE_WAITERS`] are kept), so a program has as many of them open as
//! it has results awaited at once. The task, not the caller's future, holds
//! the connection: a caller that stops awaiting leaves the task to end with
//! its pop.
//!
//! # Failures
//!
//! As on the sync path: a server that cannot be reached is
//! [`Error::Unavailable`], and so is a request that finds the connection
//! broken; that connection is then dropped and the next request connects
//! again, under the backoff the sync pool follows too ([`Backoff`]), since
//! both reach the same server. Nothing is retried behind the caller's back.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use outband::{AsyncEnqueue, BoxFuture, Error, JobId, NewJob};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterConfig;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisResult, ScriptInvocation, Value};
use tokio::runtime::{Handle, Runtime};

use crate::RedisQueue;
use crate::conn::{Backoff, CONNECT_TIMEOUT, Pool, RESPONSE_TIMEOUT, Target, is_broken, map_error};
use crate::enqueue::EnqueueCall;

/// The name of the backend's I/O runtime's worker thread.
const THREAD_NAME: &str = "outband-redis-io";
/// The idle connections of awaited waits kept for the next waits.
const MAX_IDLE_WAITERS: usize = 16;

impl AsyncEnqueue for RedisQueue {
    fn enqueue_many_async(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            let Some(call) = self.enqueue_call(&jobs)? else {
                return Ok(Vec::new());
            };
            let EnqueueCall {
                new_queues,
                register,
                script,
                ids,
            } = call;
            let sent = self.aio.send(register, script).await?;
            if sent.registered {
                self.registered(new_queues);
            }
            ids.of(sent.reply?)
        })
    }

    fn wait_finished_async(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Option<BoxFuture<'_, Result<(), Error>>> {
        Some(Box::pin(async move {
            match self.finish_wait(id, timeout) {
                Some((register, pop, block)) => self.aio.wait(register, pop, block).await,
                None => Ok(()),
            }
        }))
    }
}

/// The async side of a [`RedisQueue`]: its own runtime, started on first
/// use, and the connection that lives on it.
pub(crate) struct AsyncLink {
    shared: Arc<Shared>,
    runtime: Mutex<Option<IoRuntime>>,
}

/// What the request tasks share: where to connect, the backoff, and the
/// connection once open.
struct Shared {
    target: Target,
    backoff: Arc<Backoff>,
    /// The open connection and its generation, which tells a request that
    /// found a connection broken whether it is still the one cached.
    current: Mutex<Option<(u64, AsyncConn)>>,
    /// Held while connecting, so concurrent requests open one connection,
    /// not one each; it counts the connections opened.
    connecting: tokio::sync::Mutex<u64>,
    /// Idle connections of awaited waits, each used by one wait at a time.
    waiters: Mutex<Vec<AsyncConn>>,
}

/// An async connection; cloning one shares it.
#[derive(Clone)]
enum AsyncConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// What a request task reports: whether the new queue names were
/// registered, and the script's reply.
struct Sent {
    registered: bool,
    reply: Result<Value, Error>,
}

/// The backend's runtime, shut down without waiting when dropped: the
/// [`RedisQueue`] may be dropped inside a caller's runtime, where waiting
/// for a runtime to stop is not allowed.
struct IoRuntime(Option<Runtime>);

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AsyncLink {
    /// The async side of `pool`'s queue: the same server, the same backoff.
    /// Starts nothing.
    pub(crate) fn new(pool: &Pool) -> Self {
        Self {
            shared: Arc::new(Shared {
                target: pool.target().clone(),
                backoff: Arc::clone(pool.backoff()),
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(0),
                waiters: Mutex::new(Vec::new()),
            }),
            runtime: Mutex::new(None),
        }
    }

    /// The backend's runtime, started the first time.
    fn runtime(&self) -> Result<Handle, Error> {
        let mut runtime = lock(&self.runtime);
        if let Some(IoRuntime(Some(started))) = &*runtime {
            return Ok(started.handle().clone());
        }
        let started = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
            .map_err(|error| {
                Error::backend(format!("cannot start the {THREAD_NAME} runtime: {error}"))
            })?;
        let handle = started.handle().clone();
        *runtime = Some(IoRuntime(Some(started)));
        Ok(handle)
    }

    /// Sends `register` (if any), then `script`, as a task on the backend's
    /// runtime, and waits for it.
    async fn send(
        &self,
        register: Option<Cmd>,
        script: ScriptInvocation<'static>,
    ) -> Result<Sent, Error> {
        let shared = Arc::clone(&self.shared);
        let task = self
            .runtime()?
            .spawn(async move { shared.send(register.as_ref(), &script).await });
        task.await.map_err(|error| {
            Error::backend(format!(
                "an enqueue on the {THREAD_NAME} runtime failed: {error}"
            ))
        })
    }
}

impl AsyncLink {
    /// Sends `register`, then `pop` if the job has not ended, as a task on
    /// the backend's runtime over a connection of the task's own, and waits
    /// for it.
    pub(crate) async fn wait(
        &self,
        register: ScriptInvocation<'static>,
        pop: Cmd,
        block: Duration,
    ) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let task = self
            .runtime()?
            .spawn(async move { shared.wait(&register, &pop, block).await });
        task.await.map_err(|error| {
            Error::backend(format!(
                "a wait for a job's end on the {THREAD_NAME} runtime failed: {error}"
            ))
        })?
    }
}

impl Shared {
    /// Runs on the backend's runtime. The connection has no response
    /// timeout of its own, since its pop blocks: the whole wait is bounded
    /// here instead, and a connection that overran it is dropped.
    async fn wait(
        &self,
        register: &ScriptInvocation<'static>,
        pop: &Cmd,
        block: Duration,
    ) -> Result<(), Error> {
        let idle = lock(&self.waiters).pop();
        let mut con = match idle {
            Some(con) => con,
            None => {
                self.backoff.check()?;
                self.backoff.record(self.open_waiter().await)?
            }
        };
        let bound = block + RESPONSE_TIMEOUT;
        let waited = tokio::time::timeout(bound, async {
            match &mut con {
                AsyncConn::Single(con) => wait_on(con, register, pop).await,
                AsyncConn::Cluster(con) => wait_on(con, register, pop).await,
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => {
                self.keep_waiter(con);
                Ok(())
            }
            Ok(Err(error)) => {
                if is_broken(&error) {
                    lock(&self.waiters).clear();
                } else {
                    self.keep_waiter(con);
                }
                Err(map_error(error))
            }
            Err(_) => Err(Error::unavailable(format!(
                "Redis did not answer a wait for a job's end within {bound:?}"
            ))),
        }
    }

    /// A new connection for awaited waits, without a response timeout.
    async fn open_waiter(&self) -> RedisResult<AsyncConn> {
        match &self.target {
            Target::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(None);
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(AsyncConn::Single)
            }
            // the builder's connection timeout stays; the response timeout
            // goes, as the config sets none
            Target::Cluster(client) => client
                .get_async_connection_with_config(ClusterConfig::new())
                .await
                .map(AsyncConn::Cluster),
        }
    }

    fn keep_waiter(&self, con: AsyncConn) {
        let mut idle = lock(&self.waiters);
        if idle.len() < MAX_IDLE_WAITERS {
            idle.push(con);
        }
    }

    /// Runs on the backend's runtime.
    async fn send(&self, register: Option<&Cmd>, script: &ScriptInvocation<'static>) -> Sent {
        let (generation, mut con) = match self.connection().await {
            Ok(open) => open,
            Err(error) => {
                return Sent {
                    registered: false,
                    reply: Err(error),
                };
            }
        };
        let (registered, reply) = match &mut con {
            AsyncConn::Single(con) => call(con, register, script).await,
            AsyncConn::Cluster(con) => call(con, register, script).await,
        };
        let reply = reply.map_err(|error| {
            if is_broken(&error) {
                self.forget(generation);
            }
            map_error(error)
        });
        Sent { registered, reply }
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<(u64, AsyncConn), Error> {
        if let Some(open) = lock(&self.current).clone() {
            return Ok(open);
        }
        let mut opened = self.connecting.lock().await;
        if let Some(open) = lock(&self.current).clone() {
            return Ok(open);
        }
        self.backoff.check()?;
        let con = self.backoff.record(self.open().await)?;
        *opened += 1;
        let open = (*opened, con);
        *lock(&self.current) = Some(open.clone());
        Ok(open)
    }

    async fn open(&self) -> RedisResult<AsyncConn> {
        match &self.target {
            Target::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(AsyncConn::Single)
            }
            // the client's builder set its timeouts
            Target::Cluster(client) => client.get_async_connection().await.map(AsyncConn::Cluster),
        }
    }

    /// Drops the connection of `generation` if it is still the cached one.
    fn forget(&self, generation: u64) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

/// `register`, then `script`, on `con`; and whether `register` succeeded.
async fn call(
    con: &mut impl ConnectionLike,
    register: Option<&Cmd>,
    script: &ScriptInvocation<'static>,
) -> (bool, RedisResult<Value>) {
    if let Some(sadd) = register
        && let Err(error) = sadd.query_async::<i64>(con).await
    {
        return (false, Err(error));
    }
    (register.is_some(), script.invoke_async(con).await)
}

/// `register`, then `pop` if its reply says the job has not ended.
async fn wait_on(
    con: &mut impl ConnectionLike,
    register: &ScriptInvocation<'static>,
    pop: &Cmd,
) -> RedisResult<()> {
    if register.invoke_async::<i64>(con).await? == 1 {
        pop.query_async::<Value>(con).await?;
    }
    Ok(())
}
