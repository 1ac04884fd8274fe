//! The simple mode: one thread claims a job, runs it, and completes it
//! outcome in the call that claims the next.

use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::engine::Engine;
use super::threads::spawn;
use super::{Mode, Processor, ProcessorConfig};
use crate::{BaseQueue, Claimed, Error, Registry};

/// Runs one job at a time, in enqueue order (seed: lovely.remotetask's
/// `SimpleProcessor`). While jobs keep coming, one call to the backend
/// completes a job and claims the next
/// ([`BaseQueue::complete_and_claim`]).
///
/// It is a [`Processor`] in the simple mode, and dereferences to one: its
/// steps, its loop and its stop are the [`Processor`]'s.
///
/// ```
/// use outband::{MemoryQueue, ProcessorConfig, SimpleProcessor};
/// use std::sync::Arc;
///
/// let backend = Arc::new(MemoryQueue::new());
/// let processor = SimpleProcessor::new(backend, ProcessorConfig::default())?;
/// assert!(!processor.process_next()?); // nothing to do yet
/// # Ok::<(), outband::Error>(())
/// ```
pub struct SimpleProcessor(Processor);

impl std::fmt::Debug for SimpleProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl SimpleProcessor {
    /// A processor over `backend`. Fails if the command registry is invalid
    /// (two commands with one name) or the configuration is.
    pub fn new(backend: Arc<dyn BaseQueue>, config: ProcessorConfig) -> Result<Self, Error> {
        Self::with_registry(backend, config, Registry::global()?)
    }

    /// A processor that runs the commands of `registry` instead of those
    /// linked into the program: outband-bench's, which are not registered.
    /// Not public API: it may change in any release.
    #[doc(hidden)]
    pub fn with_registry(
        backend: Arc<dyn BaseQueue>,
        config: ProcessorConfig,
        registry: &'static Registry,
    ) -> Result<Self, Error> {
        Processor::with_registry(backend, config, registry, Mode::Simple).map(Self)
    }
}

impl Deref for SimpleProcessor {
    type Target = Processor;

    fn deref(&self) -> &Processor {
        &self.0
    }
}

impl From<SimpleProcessor> for Processor {
    fn from(processor: SimpleProcessor) -> Self {
        processor.0
    }
}

/// Starts the simple loop's one thread.
pub(super) fn spawn_loop(engine: &Arc<Engine>) -> Vec<JoinHandle<()>> {
    let engine = Arc::clone(engine);
    vec![spawn("outband-simple".into(), move || simple_loop(&engine))]
}

fn simple_loop(engine: &Engine) {
    let claiming = || engine.stop.claiming();
    let mut idle = 0;
    // the job the call that completed the last job claimed, if any
    let mut next: Option<Claimed> = None;
    // a job claimed while the processor was claiming runs, as in the multi
    // processor, even when a stop came in the meantime
    while next.is_some() || claiming() {
        let job = match next.take() {
            Some(job) => job,
            None => match engine.claim_held(1).map(|mut jobs| jobs.pop()) {
                Ok(Some(job)) => {
                    idle = 0;
                    job
                }
                Ok(None) => {
                    engine.idle_wait(&mut idle);
                    continue;
                }
                Err(error) => {
                    log::error!("claiming failed: {error}");
                    engine.idle_wait(&mut idle);
                    continue;
                }
            },
        };
        // not when a stop released it while its claim was in flight
        if !engine.begin(&job) {
            continue;
        }
        let finished = engine.execute(job);
        // one call completes the job and claims the next
        next = engine
            .complete_and_claim(vec![finished], usize::from(claiming()))
            .pop();
    }
}
