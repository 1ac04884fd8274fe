//! Typed batches: `f::enqueue_many` and `f::enqueue_many_on` enqueue one job
//! per item in one backend call, all or nothing, with the command's options;
//! `f::job` builds the job a call would enqueue without storing it.

use std::time::{Duration, SystemTime};

use outband::{BaseQueue, Error, JobState, MemoryQueue, When, codec, queue_command};

#[queue_command(queue = "batches")]
fn tick() {}

#[queue_command(queue = "batches", priority = 4)]
fn resize(path: String) {
    let _ = path;
}

#[queue_command(queue = "batches", retries = 7, key = user)]
fn notify(user: u64, text: String) {
    let _ = (user, text);
}

#[test]
fn a_batch_enqueues_one_job_per_item_in_order_with_the_commands_options() {
    let backend = MemoryQueue::new();
    let ids =
        notify::enqueue_many_on(&backend, [(1, "a".to_owned()), (2, "b".to_owned())]).unwrap();
    assert_eq!(ids.len(), 2);
    for (id, (user, text)) in ids.iter().zip([(1u64, "a"), (2, "b")]) {
        let job = backend.job(*id).unwrap().unwrap();
        assert_eq!(job.command, notify::NAME);
        assert_eq!(job.queue, "batches");
        assert_eq!(job.max_attempts, 8);
        assert_eq!(job.key, Some(user.to_string()));
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(
            codec::decode::<(u64, String)>(&job.args).unwrap(),
            (user, text.to_owned())
        );
    }

    // one argument: the items are the values; none: the items are `()`
    let ids = resize::enqueue_many_on(&backend, ["a.png".to_owned(), "b.png".to_owned()]).unwrap();
    let job = backend.job(ids[1]).unwrap().unwrap();
    assert_eq!(
        (
            job.priority,
            codec::decode::<(String,)>(&job.args).unwrap().0
        ),
        (4, "b.png".to_owned())
    );
    assert_eq!(
        tick::enqueue_many_on(&backend, [(), (), ()]).unwrap().len(),
        3
    );
    assert_eq!(tick::enqueue_many_on(&backend, []).unwrap(), vec![]);
    assert_eq!(backend.len("batches").unwrap(), 7);
}

#[test]
fn an_item_that_cannot_be_encoded_enqueues_none_of_the_batch() {
    let backend = MemoryQueue::new();
    let too_big = "x".repeat(codec::max_payload() + 1);
    let error = resize::enqueue_many_on(&backend, ["fine".to_owned(), too_big]).unwrap_err();
    assert!(matches!(error, Error::Codec(_)), "{error}");
    assert_eq!(backend.len("batches").unwrap(), 0, "nothing was enqueued");
}

#[test]
fn the_default_backend_is_required_as_for_a_single_call() {
    // no default backend is set in this test binary
    let error = tick::enqueue_many([()]).unwrap_err();
    assert!(matches!(error, Error::NoDefaultBackend), "{error}");
}

#[test]
fn job_builds_the_job_without_storing_it() {
    let job = notify::job(9, "hi".into()).unwrap();
    assert_eq!(
        (
            job.command.as_str(),
            job.queue.as_str(),
            job.key.as_deref(),
            job.max_attempts
        ),
        (notify::NAME, "batches", Some("9"), 8)
    );
    assert!(matches!(job.when, When::Now));
    let later = job.when(Duration::from_secs(60));
    let backend = MemoryQueue::new();
    let id = backend.enqueue(later).unwrap();
    let stored = backend.job(id).unwrap().unwrap();
    assert!(
        stored.run_at > SystemTime::now() + Duration::from_secs(50),
        "scheduled"
    );
}
