//! The threads of a started processor: its loop's threads, the heartbeat
//! that extends the leases of the jobs it holds until the last one is
//! completed, and the maintenance, unless its configuration turns it off.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engine::Engine;
use crate::maintenance::{Maintenance, Running};

/// The background threads of a started processor.
pub(super) struct Threads {
    handles: Vec<JoinHandle<()>>,
    heartbeat: JoinHandle<()>,
    engine: Arc<Engine>,
    maintenance: Option<Running>,
}

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
    pub(super) fn start(
        engine: &Arc<Engine>,
        threads: &Mutex<Option<Threads>>,
        spawn_loop: impl FnOnce() -> Vec<JoinHandle<()>>,
    ) {
        let mut threads = threads.lock().unwrap_or_else(PoisonError::into_inner);
        if threads.is_some() {
            return;
        }
        engine.stop.start();
        engine.async_jobs.reset();
        let heartbeat = Self::start_heartbeat(engine);
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
    /// every second, or at once for a lease to extend now.
    fn start_heartbeat(engine: &Arc<Engine>) -> JoinHandle<()> {
        engine.requests.reset();
        let engine = Arc::clone(engine);
        spawn("outband-heartbeat".into(), move || {
            let period = (engine.config.lease / 6).max(Duration::from_millis(10));
            let tick = period.min(Duration::from_secs(1));
            let mut last_beat = Instant::now();
            loop {
                let drained = engine.requests.wait(tick);
                if drained.stopped {
                    break;
                }
                engine.send_reports(drained.progress, drained.beats);
                engine.enforce_timeouts();
                if last_beat.elapsed() >= period {
                    engine.heartbeat_once();
                    last_beat = Instant::now();
                }
            }
        })
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
