//! The threads of a started processor: its loop's threads, the heartbeat
//! that extends the leases of the jobs it holds until the last one is
//! completed, keeps the processor in the backend's consumer registry and
//! reads the cancel feed where the backend pushes cancels, and the
//! maintenance, unless its configuration turns it off.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engine::Engine;
use crate::maintenance::{Maintenance, Running};
use crate::{CONSUMER_HEARTBEAT, CONSUMER_TTL, CancelFeed, ConsumerInfo};

/// The background threads of a started processor.
pub(super) struct Threads {
    handles: Vec<JoinHandle<()>>,
    heartbeat: JoinHandle<()>,
    engine: Arc<Engine>,
    maintenance: Option<Running>,
}

/// The longest the heartbeat thread waits on a cancel feed before it looks
/// at its other requests: a lease to extend now, or the stop, waits up to
/// that long.
const FEED_SLICE: Duration = Duration::from_millis(50);

/// How long after a cancel feed failed the heartbeat thread opens it again.
const FEED_REOPEN: Duration = Duration::from_millis(500);

/// Spawns a named thread of a processor.
pub(super) fn spawn(name: String, run: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(run)
        .expect("spawning a thread")
}

impl Threads {
    /// Starts a processor's background loop unless it already runs: `spawn_loop`
    /// starts the loop's threads, and the heartbeat comes with them.
    /// `slots` are the threads for sync jobs and the async slots the
    /// processor registers as its consumer's.
    pub(super) fn start(
        engine: &Arc<Engine>,
        threads: &Mutex<Option<Threads>>,
        slots: (usize, usize),
        spawn_loop: impl FnOnce() -> Vec<JoinHandle<()>>,
    ) {
        let mut threads = threads.lock().unwrap_or_else(PoisonError::into_inner);
        if threads.is_some() {
            return;
        }
        engine.stop.start();
        engine.async_jobs.reset();
        // opened before the loop claims, so that it hears every cancel of
        // the jobs this processor runs
        let feed = Self::open_cancel_feed(engine);
        let heartbeat = Self::start_heartbeat(engine, slots, feed);
        let config = &engine.config;
        let maintenance = config.maintenance.then(|| {
            Maintenance::new(Arc::clone(&engine.backend), config.lease)
                .retention(config.retention)
                .spawn()
        });
        *threads = Some(Threads {
            handles: spawn_loop(),
            heartbeat,
            engine: Arc::clone(engine),
            maintenance,
        });
    }

    /// The heartbeat thread: it extends the leases due every sixth of a
    /// lease, and sends what running commands reported (see `reports.rs`)
    /// every second, or at once for a lease to extend now. It registers
    /// the processor as a consumer when it starts, again every
    /// [`CONSUMER_HEARTBEAT`] with the number of jobs running, and
    /// unregisters it when the stop ends it.
    ///
    /// Where the backend pushes cancels, the thread waits on the `feed`
    /// rather than on its requests, [`FEED_SLICE`] at a time: each id it
    /// receives of a job running here is heartbeaten at once, and the
    /// heartbeat's answer stops the job. A feed that fails is opened again
    /// [`FEED_REOPEN`] later; meanwhile the regular heartbeats carry the
    /// cancels.
    fn start_heartbeat(
        engine: &Arc<Engine>,
        (threads, concurrency): (usize, usize),
        mut feed: Option<Box<dyn CancelFeed>>,
    ) -> JoinHandle<()> {
        engine.requests.reset();
        let engine = Arc::clone(engine);
        spawn("outband-heartbeat".into(), move || {
            let period = (engine.config.lease / 6).max(Duration::from_millis(10));
            let tick = period.min(Duration::from_secs(1));
            let mut last_beat = Instant::now();
            let mut last_reports = Instant::now();
            // when a failed feed is opened again; `None` with no feed to open
            let mut reopen = None;
            let mut consumer = Registration::new(&engine, threads, concurrency);
            loop {
                let drained = match &mut feed {
                    Some(open) => {
                        match open.next(FEED_SLICE) {
                            Ok(ids) => ids.into_iter().for_each(|id| engine.cancel_pushed(id)),
                            Err(error) => {
                                log::warn!(
                                    "the backend's cancel feed failed ({error}); opening it again"
                                );
                                feed = None;
                                reopen = Some(Instant::now() + FEED_REOPEN);
                            }
                        }
                        let reports_due = last_reports.elapsed() >= tick;
                        if reports_due {
                            last_reports = Instant::now();
                        }
                        engine.requests.take_now(reports_due)
                    }
                    None => {
                        let wait = reopen.map_or(tick, |at: Instant| {
                            at.saturating_duration_since(Instant::now()).min(tick)
                        });
                        engine.requests.wait(wait)
                    }
                };
                if drained.stopped {
                    break;
                }
                engine.send_reports(drained.progress, drained.beats);
                engine.enforce_timeouts();
                if last_beat.elapsed() >= period {
                    engine.heartbeat_once();
                    last_beat = Instant::now();
                }
                if reopen.is_some_and(|at| at <= Instant::now()) {
                    match engine.backend.cancel_feed() {
                        Ok(again) => {
                            feed = again;
                            reopen = None;
                        }
                        Err(_) => reopen = Some(Instant::now() + FEED_REOPEN),
                    }
                }
                consumer.refresh(&engine);
            }
            consumer.unregister(&engine);
        })
    }

    /// The backend's cancel feed, where it has one
    /// ([`BaseQueue::cancel_feed`](crate::BaseQueue::cancel_feed)).
    fn open_cancel_feed(engine: &Engine) -> Option<Box<dyn CancelFeed>> {
        match engine.backend.cancel_feed() {
            Ok(feed) => feed,
            Err(error) => {
                log::warn!(
                    "opening the backend's cancel feed failed ({error}); running jobs learn of cancels at their heartbeats"
                );
                None
            }
        }
    }

    /// Stops the maintenance, if it runs: at the end of a stop, which may
    /// leave the loop's threads running released jobs.
    pub(super) fn stop_maintenance(&mut self) {
        if let Some(maintenance) = self.maintenance.take() {
            maintenance.stop();
        }
    }

    /// Joins the loop threads, then stops the heartbeat, which beats for the
    /// running jobs until the last one has finished, and the maintenance.
    pub(super) fn join(self) {
        for handle in self.handles {
            if handle.join().is_err() {
                log::error!("a processor thread panicked outside a job");
            }
        }
        self.engine.requests.stop();
        if self.heartbeat.join().is_err() {
            log::error!("the heartbeat thread panicked");
        }
        if let Some(maintenance) = self.maintenance {
            maintenance.stop();
        }
    }
}

/// A started processor's entry in the backend's consumer registry. A
/// registration that fails is logged (once until one succeeds again) and
/// tried again at the next heartbeat: the registry is for people to look
/// at, and never stops a consumer.
struct Registration {
    info: ConsumerInfo,
    last: Instant,
    failing: bool,
}

impl Registration {
    /// Registers the processor now.
    fn new(engine: &Engine, threads: usize, concurrency: usize) -> Self {
        let mut registration = Self {
            info: ConsumerInfo::this_process(&engine.queues, threads, concurrency),
            last: Instant::now(),
            failing: false,
        };
        registration.register(engine);
        registration
    }

    /// Registers again, with the jobs running now, once
    /// [`CONSUMER_HEARTBEAT`] has passed since the last time.
    fn refresh(&mut self, engine: &Engine) {
        if self.last.elapsed() >= CONSUMER_HEARTBEAT {
            self.register(engine);
        }
    }

    fn register(&mut self, engine: &Engine) {
        self.last = Instant::now();
        self.info.running = engine.running();
        match engine.backend.register_consumer(&self.info, CONSUMER_TTL) {
            Ok(()) => self.failing = false,
            Err(error) if !self.failing => {
                self.failing = true;
                log::warn!("registering consumer {} failed: {error}", self.info.id);
            }
            Err(error) => log::debug!("registering consumer {} failed: {error}", self.info.id),
        }
    }

    fn unregister(&self, engine: &Engine) {
        if let Err(error) = engine.backend.unregister_consumer(&self.info.id) {
            log::warn!("unregistering consumer {} failed: {error}", self.info.id);
        }
    }
}
