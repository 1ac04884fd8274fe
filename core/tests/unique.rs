//! `#[queue_command(unique …)]`: a call whose unique key is held gives the
//! earlier job's handle, marked a duplicate, and stores nothing; the key is
//! made of all the arguments, one of them, or a constant.

use std::sync::Arc;
use std::time::Duration;

use outband::{
    BaseQueue, Error, JobState, MemoryQueue, Unique, UniqueBy, UniqueSpec, UniqueUntil,
    queue_command,
};

#[queue_command(queue = "unique", unique)]
fn sync_account(account: u64, full: bool) {
    let _ = (account, full);
}

#[queue_command(queue = "unique", unique(by = account, until = "started"))]
fn refresh(account: u64, note: String) {
    let _ = (account, note);
}

#[queue_command(queue = "unique", unique(key = "nightly", window = "1h"))]
fn rebuild_index(reason: String) {
    let _ = reason;
}

#[test]
fn unique_commands_give_the_holder_of_their_key() {
    let backend = Arc::new(MemoryQueue::new());
    outband::set_default_backend(backend.clone()).unwrap();

    // by all the arguments, until finished
    let first = sync_account(7, true).unwrap();
    assert!(!first.is_duplicate());
    let again = sync_account(7, true).unwrap();
    assert!(again.is_duplicate(), "the same arguments are a duplicate");
    assert_eq!(again.id(), first.id());
    assert!(!sync_account(7, false).unwrap().is_duplicate());
    assert!(!sync_account(8, true).unwrap().is_duplicate());
    assert_by_all_arguments(&backend, first.id());
    assert_eq!(
        backend.job(first.id()).unwrap().unwrap().state,
        JobState::Pending
    );
    assert_eq!(
        sync_account::enqueue_on(&*backend, 7, true).unwrap(),
        first.id(),
        "enqueue_on gives the holder's id"
    );

    // by one argument, until started
    let first = refresh(1, "a".into()).unwrap();
    let again = refresh(1, "another note".into()).unwrap();
    assert!(again.is_duplicate(), "the same account is a duplicate");
    assert_eq!(again.id(), first.id());
    assert!(!refresh(2, "a".into()).unwrap().is_duplicate());

    // a constant key, held for an hour after done
    let first = rebuild_index("deploy".into()).unwrap();
    assert!(rebuild_index("cron".into()).unwrap().is_duplicate());

    // a typed batch of a unique command is refused: each goes alone
    let batch = refresh::enqueue_many([(3, "x".to_owned())]);
    assert!(matches!(batch, Err(Error::InvalidJob(_))), "{batch:?}");

    // awaited enqueues keep the same rule
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let awaited = rebuild_index::enqueue("awaited".into()).await.unwrap();
        assert!(awaited.is_duplicate());
        assert_eq!(awaited.id(), first.id());
        let fresh = sync_account::enqueue(9, true).await.unwrap();
        assert!(!fresh.is_duplicate());
        assert!(sync_account::enqueue(9, true).await.unwrap().is_duplicate());
    });

    let registry = outband::Registry::global().unwrap();
    let spec = |name: &str| registry.get(name).unwrap().unique;
    assert_eq!(
        spec(refresh::NAME),
        Some(UniqueSpec {
            by: UniqueBy::Arg("account"),
            until: UniqueUntil::Started
        })
    );
    assert_eq!(
        spec(rebuild_index::NAME),
        Some(UniqueSpec {
            by: UniqueBy::Key("nightly"),
            until: UniqueUntil::FinishedFor(Duration::from_secs(3600))
        })
    );
}

/// Job `id` holds the key made of its command and all its arguments: a job
/// enqueued by hand with that key is its duplicate.
fn assert_by_all_arguments(backend: &MemoryQueue, id: outband::JobId) {
    let job = backend.job(id).unwrap().unwrap();
    let key = Unique::of_args(&job.command, &job.args);
    let twin = outband::NewJob::new(job.command.clone(), job.args.clone())
        .queue(job.queue.clone())
        .unique(Unique::new(key.clone(), UniqueUntil::Finished));
    assert_eq!(
        backend.enqueue_unique(twin).unwrap().id,
        id,
        "the key is {key}"
    );
}
