//! Run with: cargo run -p processors
//!
//! lovely.remotetask's processor doctest, in outband: sleeping jobs show the
//! simple processor keeping enqueue order, and the multi processor never
//! running more than its threads and finishing short jobs first. With
//! `OUTBAND_URL` unset the backend is the SQLite file `outband.db` here; set it
//! to a `redis://` URL (or, built with `--features postgres`, a
//! `postgres://` one) to run it there.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outband::{BaseQueue, MultiProcessor, ProcessorConfig, SimpleProcessor, queue_command};
// Linking the backends lets `outband::open` read their URLs.
use outband_diesel as _;
use outband_redis as _;

static FINISHED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_AT_ONCE: AtomicUsize = AtomicUsize::new(0);

/// Sleeps, then logs its id, as the doctest's `sleep` task does.
#[queue_command(queue = "processors")]
fn sleep(millis: u64, id: u32) {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_AT_ONCE.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(millis));
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    println!("  Job: {id}");
    FINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(id);
}

/// Enqueues the jobs, runs them with `processor` until the queue is empty,
/// and returns the order in which they finished and the most that ran at once.
fn run(
    backend: &std::sync::Arc<dyn BaseQueue>,
    jobs: &[(u64, u32)],
    start: impl FnOnce() -> Box<dyn FnOnce()>,
) -> Result<(Vec<u32>, usize), outband::Error> {
    FINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    MOST_AT_ONCE.store(0, Ordering::SeqCst);
    for &(millis, id) in jobs {
        sleep::enqueue_on(backend, millis, id)?;
    }
    let stop = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while FINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len()
        < jobs.len()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop();
    let finished = FINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok((finished, MOST_AT_ONCE.load(Ordering::SeqCst)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("OUTBAND_URL").unwrap_or_else(|_| "sqlite://outband.db".to_owned());
    let backend = outband::open(&url)?;
    backend.flush("processors")?;
    let config = || {
        ProcessorConfig::default()
            .queues(["processors"])
            .wait_time(Duration::from_millis(5))
    };

    println!("The simple processor: one job at a time, in enqueue order");
    let simple = std::sync::Arc::new(SimpleProcessor::new(backend.clone(), config())?);
    let (order, most) = run(&backend, &[(40, 1), (100, 2), (0, 3), (80, 4)], || {
        simple.start();
        let simple = simple.clone();
        Box::new(move || simple.stop())
    })?;
    println!("  finished {order:?}, at most {most} at once\n");

    println!("The multi processor, 5 threads: short jobs finish first");
    let multi = std::sync::Arc::new(MultiProcessor::new(
        backend.clone(),
        config().max_threads(5),
    )?);
    let (order, most) = run(&backend, &[(400, 1), (1800, 2), (0, 3), (200, 4)], || {
        multi.start();
        let multi = multi.clone();
        Box::new(move || multi.stop())
    })?;
    println!("  finished {order:?}, at most {most} at once\n");

    println!("The multi processor, 2 threads: job 3 waits for a free thread");
    let two = std::sync::Arc::new(MultiProcessor::new(
        backend.clone(),
        config().max_threads(2),
    )?);
    let (order, most) = run(&backend, &[(300, 1), (500, 2), (300, 3), (800, 4)], || {
        two.start();
        let two = two.clone();
        Box::new(move || two.stop())
    })?;
    println!("  finished {order:?}, at most {most} at once");
    Ok(())
}
