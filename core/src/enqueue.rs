//! Awaited enqueues: [`Enqueue`], what a command's `f::enqueue(…)` returns.

use std::future::IntoFuture;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::__private::Keys;
use crate::codec::CodecError;
use crate::queue::BoxFuture;
use crate::{BaseQueue, Command, Enqueued, Error, JobHandle, JobId, NewJob, When};

/// An enqueue to `.await`: what `f::enqueue(…)` returns for every
/// `#[queue_command]` `f`, sync or async.
///
/// Awaiting it stores the job, by default on the [default
/// backend](crate::default_backend) and ready now, and gives its
/// [`JobHandle`] (typed `R` by what `f` returns; [`JobHandle::id`] is the
/// job's id), as `f(…)` does; but it never blocks the thread that awaits
/// it. The handle reads the backend the job went to. A backend
/// with native async I/O (Redis) is called through it
/// ([`BaseQueue::as_async`]); any other, a custom backend with only the sync
/// contract included, is called on outband's blocking pool, a bounded set
/// of threads of its own, where the jobs awaited together go to the backend
/// as one [`enqueue_many`](BaseQueue::enqueue_many) (a lone job goes at
/// once; one caller's invalid job never fails another's). The future is `Send + 'static`, and works on any
/// tokio runtime (or none: it needs no runtime of its own).
///
/// In [eager mode](crate::set_eager), awaiting an enqueue onto the default
/// backend runs the command inline instead: an async command's future is
/// awaited in the caller's task, a sync command runs on the blocking pool.
///
/// ```
/// use outband::queue_command;
///
/// #[queue_command]
/// async fn send_welcome(user_id: u64) -> Result<(), String> {
///     # let _ = user_id;
///     Ok(())
/// }
///
/// # async fn handler() -> Result<(), outband::Error> {
/// // in an async handler:
/// let id = send_welcome::enqueue(7).await?;
/// # let _ = id;
/// // later, on another backend:
/// # let backend = std::sync::Arc::new(outband::MemoryQueue::new());
/// send_welcome::enqueue(7)
///     .at(std::time::Duration::from_secs(300))
///     .on(&backend)
///     .await?;
/// # Ok(()) }
/// # fn main() {}
/// ```
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue<R = ()> {
    command: &'static Command,
    args: Result<Vec<u8>, CodecError>,
    keys: Keys,
    when: When,
    timeout: Option<std::time::Duration>,
    /// The backend, and its address, by which awaited enqueues onto it are
    /// coalesced.
    backend: Option<(Arc<dyn BaseQueue>, usize)>,
    _returns: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Enqueue<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueue")
            .field("command", &self.command.name)
            .field("key", &self.keys.order)
            .field("when", &self.when)
            .field("default_backend", &self.backend.is_none())
            .finish_non_exhaustive()
    }
}

impl<R> Enqueue<R> {
    /// An enqueue of `command` with its encoded arguments (or the error of
    /// encoding them), as the macro builds it.
    #[doc(hidden)]
    pub fn new(
        command: &'static Command,
        keys: impl Into<Keys>,
        args: Result<Vec<u8>, CodecError>,
    ) -> Self {
        Self {
            command,
            args,
            keys: keys.into(),
            when: When::Now,
            timeout: None,
            backend: None,
            _returns: PhantomData,
        }
    }

    /// Runs the job at or after `at_or_after`: a [`When`], a
    /// [`SystemTime`](std::time::SystemTime), or a
    /// [`Duration`](std::time::Duration) from when the backend stores it.
    pub fn at(mut self, at_or_after: impl Into<When>) -> Self {
        self.when = at_or_after.into();
        self
    }

    /// Lets one attempt of this job run for `timeout`, in place of the
    /// command's own `timeout` (see [`Job::timeout`](crate::Job::timeout)).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Enqueues on `backend` rather than the default backend. Eager mode
    /// does not apply: the job is stored, as `f::enqueue_on` stores it.
    pub fn on<B: BaseQueue + ?Sized + 'static>(mut self, backend: &Arc<B>) -> Self {
        // An `Arc<B>` is a sized backend of its own, whatever `B` is.
        let address = Arc::as_ptr(backend).cast::<()>() as usize;
        self.backend = Some((Arc::new(Arc::clone(backend)), address));
        self
    }

    /// The registered name of the command enqueued.
    pub fn command(&self) -> &'static str {
        self.command.name
    }

    async fn send(self) -> Result<JobHandle<R>, Error> {
        let command = self.command;
        let bound = self
            .backend
            .as_ref()
            .map(|(backend, _)| Arc::clone(backend));
        let enqueued = self.store().await?;
        Ok(JobHandle::with_backend(enqueued.id, command, bound).duplicate(enqueued.duplicate))
    }

    async fn store(self) -> Result<Enqueued, Error> {
        let args = self.args?;
        let (backend, address) = match self.backend {
            Some(backend) => backend,
            None if crate::is_eager() => {
                let id = crate::eager::run_awaited(self.command, self.keys.order, args).await?;
                return Ok(Enqueued::new(id));
            }
            None => default_backend().await?,
        };
        let mut job = crate::__private::new_job(self.command, self.when, self.keys, args);
        job.timeout = self.timeout;
        crate::limits::check_backend(&*backend, &job)?;
        crate::observe::enqueue_async(1, async move {
            if job.unique.is_some() {
                // a unique enqueue reads the key's holder before it stores:
                // no batching with others, on the blocking pool
                return crate::blocking::run(move || backend.enqueue_unique(job)).await;
            }
            Ok(Enqueued::new(Self::store_job(backend, address, job).await?))
        })
        .await
    }

    async fn store_job(
        backend: Arc<dyn BaseQueue>,
        address: usize,
        job: NewJob,
    ) -> Result<JobId, Error> {
        if let Some(native) = backend.as_async() {
            let ids = native.enqueue_many_async(vec![job]).await?;
            return ids
                .into_iter()
                .next()
                .ok_or_else(|| Error::backend("enqueue_many_async returned no id for one job"));
        }
        crate::coalesce::enqueue(address, backend, job).await
    }
}

impl<R: 'static> IntoFuture for Enqueue<R> {
    type Output = Result<JobHandle<R>, Error>;
    type IntoFuture = BoxFuture<'static, Result<JobHandle<R>, Error>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// The default backend and its address; opening it from `OUTBAND_URL` the
/// first time connects to a server, which happens on the blocking pool.
async fn default_backend() -> Result<(Arc<dyn BaseQueue>, usize), Error> {
    let backend = match crate::settings::default_backend_if_set() {
        Some(backend) => Arc::clone(backend),
        None => crate::blocking::run(|| crate::default_backend().map(Arc::clone)).await?,
    };
    let address = Arc::as_ptr(&backend).cast::<()>() as usize;
    Ok((backend, address))
}
