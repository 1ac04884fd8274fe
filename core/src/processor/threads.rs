//! The threads of a started processor: its loop's threads, the heartbeat
//! that extends the leases of the jobs it holds until the last one is
//! completed, and the maintenance, unless its configuration turns it off.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::engine::Engine;
use crate::maintenance::{Maintenance, Running};

/// The background threads of a started processor.
pub(super) struct Threads {
    handles: Vec<JoinHandle<()>>,
    heartbeat: JoinHandle<()>,
    heartbeat_stop: Arc<(Mutex<bool>, Condvar)>,
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
        let (heartbeat, heartbeat_stop) = Self::start_heartbeat(engine);
        let config = &engine.config;
        let maintenance = config.maintenance.then(|| {
            Maintenance::new(Arc::clone(&engine.backend), config.lease)
                .retention(config.retention)
                .spawn()
        });
        *threads = Some(Threads {
            handles: spawn_loop(),
            heartbeat,
            heartbeat_stop,
            maintenance,
        });
    }

    fn start_heartbeat(engine: &Arc<Engine>) -> (JoinHandle<()>, Arc<(Mutex<bool>, Condvar)>) {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (engine, signal) = (Arc::clone(engine), Arc::clone(&stop));
        let handle = spawn("outband-heartbeat".into(), move || {
            let period = (engine.config.lease / 6).max(Duration::from_millis(10));
            let (lock, condvar) = &*signal;
            let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !*stopped {
                stopped = condvar
                    .wait_timeout(stopped, period)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
                if !*stopped {
                    engine.heartbeat_once();
                }
            }
        });
        (handle, stop)
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
        let (lock, condvar) = &*self.heartbeat_stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        condvar.notify_all();
        if self.heartbeat.join().is_err() {
            log::error!("the heartbeat thread panicked");
        }
        if let Some(maintenance) = self.maintenance {
            maintenance.stop();
        }
    }
}
