//! A processor that ran async jobs leaves no thread of its runtime behind
//! once it is dropped: not its worker, nor the blocking-pool thread a
//! command's `spawn_blocking` ran on. A thread still ending when the
//! program exits could cross the exit handlers of the C libraries it used.
//!
//! A test binary of its own: it counts the threads of the process.

use std::sync::Arc;
use std::time::Duration;

use outband::{BaseQueue, MemoryQueue, MultiProcessor, ProcessorConfig, queue_command};
use outband_testkit::wait_until;

/// Sleeps on a thread of the runtime's blocking pool.
#[queue_command(queue = "shutdown")]
async fn block_a_moment() -> Result<(), String> {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))
        .await
        .map_err(|error| error.to_string())
}

/// The names of the process's threads that belong to processors' runtimes.
fn runtime_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("the process's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("outband-async"))
        .collect()
}

#[test]
fn dropping_a_processor_ends_its_runtime_threads() {
    let backend = Arc::new(MemoryQueue::new());
    for _ in 0..4 {
        block_a_moment::enqueue_on(&*backend).unwrap();
    }
    let processor = MultiProcessor::new(
        backend.clone(),
        ProcessorConfig::default()
            .queues(["shutdown"])
            .max_threads(1)
            .wait_time(Duration::from_millis(10)),
    )
    .unwrap();
    processor.start();
    wait_until("the four jobs are done", None, || {
        backend.stats("shutdown").unwrap().done == 4
    });
    assert!(
        runtime_threads().len() >= 2,
        "a runtime worker and a blocking thread ran: {:?}",
        runtime_threads()
    );
    processor.stop();
    drop(processor);
    assert_eq!(
        runtime_threads(),
        Vec::<String>::new(),
        "no runtime thread is left"
    );
}
