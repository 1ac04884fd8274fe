//! A processor started without the daemon runs the maintenance: a lease a
//! worker lost is taken back, and the job runs again. With the maintenance
//! off, nothing takes it back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::maintenance::Maintenance;
use outband::{BaseQueue, JobId, JobState, MemoryQueue, NewJob, Processor, ProcessorConfig};

/// A job claimed by a worker that is never heard of again: `running`, its
/// lease expiring after `lease`.
fn lost_job(backend: &MemoryQueue, lease: Duration) -> JobId {
    let id = backend
        .enqueue(
            NewJob::new("app::lost", vec![1])
                .queue("lost")
                .max_attempts(3),
        )
        .unwrap();
    let claimed = backend.claim("lost", 1, lease).unwrap();
    assert_eq!(claimed[0].job.id, id);
    id
}

/// A processor on another queue, with a short lease: its maintenance steps
/// come every 100 ms.
fn processor(backend: &Arc<MemoryQueue>, maintenance: bool) -> Processor {
    let config = ProcessorConfig::default()
        .queues(["other"])
        .lease(Duration::from_millis(200))
        .wait_time(Duration::from_millis(10))
        .maintenance(maintenance);
    Processor::simple(backend.clone(), config).unwrap()
}

#[test]
fn a_started_processor_takes_back_a_lease_a_worker_lost() {
    let backend = Arc::new(MemoryQueue::new());
    let id = lost_job(&backend, Duration::from_millis(50));
    let processor = processor(&backend, true);
    processor.start();

    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.job(id).unwrap().unwrap().state == JobState::Running {
        assert!(
            Instant::now() < deadline,
            "the lost lease was never taken back"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    processor.stop();
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Pending, 1));
    assert_eq!(
        job.last_error.as_deref(),
        Some("lease expired on attempt 1 of 3")
    );
    let again = backend.claim("lost", 1, Duration::from_secs(60)).unwrap();
    assert_eq!(
        (again[0].job.id, again[0].job.attempt),
        (id, 2),
        "it runs again"
    );
}

#[test]
fn with_the_maintenance_off_a_lost_lease_waits_for_a_step() {
    let backend = Arc::new(MemoryQueue::new());
    let id = lost_job(&backend, Duration::ZERO);
    let processor = processor(&backend, false);
    processor.start();
    // ten periods of a maintenance that would run
    std::thread::sleep(Duration::from_secs(1));
    processor.stop();
    assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Running);

    let step = Maintenance::new(backend.clone(), Duration::from_millis(200));
    assert_eq!(step.recover_once().unwrap().requeued, 1);
    assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Pending);
}

#[test]
fn a_stopped_processor_runs_no_maintenance() {
    let backend = Arc::new(MemoryQueue::new());
    let processor = processor(&backend, true);
    processor.start();
    assert_eq!(processor.stop_within(Duration::ZERO).released, 0);
    // stopped: a lease lost now is no longer taken back by this processor
    let id = lost_job(&backend, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backend.job(id).unwrap().unwrap().state, JobState::Running);
}
