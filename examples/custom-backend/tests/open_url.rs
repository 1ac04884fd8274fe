//! `FileQueue` as a program meets it: opened by URL through `outband::open`,
//! fed by `#[queue_command]` functions, drained by the processors; and
//! shared by several handles on one directory, as several processes share it.

use std::collections::HashSet;
use std::time::Duration;

use custom_backend::FileQueue;
use outband::{
    BaseQueue, JobId, JobState, MultiProcessor, NewJob, Outcome, ProcessorConfig, SimpleProcessor,
    codec, queue_command,
};

/// Doubles a number; its result is stored with the job.
#[queue_command(queue = "open-url")]
fn double(n: u64) -> u64 {
    n * 2
}

/// Fails on odd numbers, so some jobs retry and end dead.
#[queue_command(queue = "open-url-multi", retries = 1)]
fn even_only(n: u64) -> Result<u64, String> {
    if n.is_multiple_of(2) {
        Ok(n)
    } else {
        Err(format!("{n} is odd"))
    }
}

fn url_of(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}

#[test]
fn open_by_url_and_process_with_the_simple_processor() {
    let dir = tempfile::tempdir().unwrap();
    let backend = outband::open(&url_of(dir.path())).expect("file:// is registered");
    let ids: Vec<JobId> = (1..=5)
        .map(|n| double::enqueue_on(&*backend, n).unwrap())
        .collect();
    assert_eq!(backend.len("open-url").unwrap(), 5);
    let pending = dir.path().join("queues/open-url/pending");
    assert_eq!(
        std::fs::read_dir(&pending).unwrap().count(),
        5,
        "one file per job"
    );

    let config = ProcessorConfig::default()
        .queues(["open-url"])
        .wait_time(Duration::from_millis(10));
    let processor = SimpleProcessor::new(backend.clone(), config).unwrap();
    while processor.process_next().unwrap() {}

    for (n, id) in (1..=5).zip(ids) {
        let job = backend.job(id).unwrap().expect("kept after done");
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.result::<u64>().unwrap().unwrap(), n * 2);
    }
    let done = dir.path().join("queues/open-url/done");
    assert_eq!(std::fs::read_dir(done).unwrap().count(), 5);
    assert_eq!(std::fs::read_dir(pending).unwrap().count(), 0);

    // a second handle on the same directory, as another process opens it,
    // sees the same jobs
    let other = outband::open(&url_of(dir.path())).unwrap();
    assert_eq!(other.stats("open-url").unwrap().done, 5);
}

#[test]
fn the_multi_processor_drains_the_queue_with_retries_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let backend = outband::open(&url_of(dir.path())).unwrap();
    let ids: Vec<JobId> = (0..20)
        .map(|n| even_only::enqueue_on(&*backend, n).unwrap())
        .collect();
    let config = ProcessorConfig::default()
        .queues(["open-url-multi"])
        .max_threads(4)
        .wait_time(Duration::from_millis(10))
        .retry(outband::RetryPolicy::immediate());
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stats = backend.stats("open-url-multi").unwrap();
        if stats.done + stats.dead == 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not drained: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    processor.stop();
    for (n, id) in (0..20u64).zip(ids) {
        let job = backend.job(id).unwrap().unwrap();
        if n.is_multiple_of(2) {
            assert_eq!((job.state, job.attempt), (JobState::Done, 1), "job {n}");
        } else {
            assert_eq!((job.state, job.attempt), (JobState::Dead, 2), "job {n}");
            assert_eq!(job.last_error, Some(format!("{n} is odd")));
        }
    }
}

#[test]
fn handles_sharing_a_directory_never_claim_one_job_twice() {
    // Each handle has its own mutex, so only the directory's flock keeps
    // them apart: the same path as separate processes.
    let dir = tempfile::tempdir().unwrap();
    let producer = FileQueue::open(dir.path()).unwrap();
    let jobs = (0..300u64)
        .map(|n| NewJob::new("app::job", codec::encode(&(n,)).unwrap()).queue("shared"))
        .collect();
    producer.enqueue_many(jobs).unwrap();
    let claimed: Vec<JobId> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let handle = FileQueue::open(dir.path()).unwrap();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let batch = handle.claim("shared", 3, Duration::from_secs(60)).unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        for claimed in batch {
                            let done = Outcome::Done {
                                result: None,
                                duration: Duration::ZERO,
                            };
                            handle.complete(&claimed.lease, done).unwrap();
                            mine.push(claimed.job.id);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(claimed.len(), 300, "every job claimed");
    assert_eq!(
        claimed.iter().collect::<HashSet<_>>().len(),
        300,
        "no job claimed twice"
    );
    assert_eq!(producer.stats("shared").unwrap().done, 300);
}

#[test]
fn a_malformed_file_is_set_aside_and_the_queue_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FileQueue::open(dir.path()).unwrap();
    let good = backend
        .enqueue(NewJob::new("app::job", vec![1]).queue("q"))
        .unwrap();
    let garbage = dir
        .path()
        .join("queues/q/pending/00000000000000000000.json");
    std::fs::write(&garbage, b"{ not json").unwrap();
    let claimed = backend.claim("q", 10, Duration::from_secs(60)).unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![good]
    );
    assert!(!garbage.exists());
    let set_aside: Vec<_> = std::fs::read_dir(dir.path().join("malformed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    assert!(set_aside[0].ends_with("00000000000000000000.json"));
}

#[test]
fn a_committed_batch_left_by_a_dead_process_is_filed_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FileQueue::open(dir.path()).unwrap();
    let id = backend
        .enqueue(NewJob::new("app::job", vec![1]).queue("q"))
        .unwrap();
    // Put the job back where a process that died just after committing its
    // batch would have left it, and leave half a write in tmp/.
    let filed = dir
        .path()
        .join(format!("queues/q/pending/{:020}.json", id.0));
    let batch = dir.path().join("incoming/batch-1");
    std::fs::create_dir(&batch).unwrap();
    std::fs::rename(&filed, batch.join(filed.file_name().unwrap())).unwrap();
    std::fs::write(dir.path().join("tmp/write-half"), b"{\"id\":").unwrap();
    drop(backend);

    let reopened = FileQueue::open(dir.path()).unwrap();
    assert!(filed.exists(), "the batch was filed");
    assert!(!batch.exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(reopened.len("q").unwrap(), 1);
    assert_eq!(reopened.job(id).unwrap().unwrap().state, JobState::Pending);
}
