//! Eager mode: decorated calls run inline (djutils' `QUEUE_ALWAYS_EAGER`).

use std::sync::atomic::{AtomicU64, Ordering};

use outband::{BaseQueue, MemoryQueue, queue_command};

static TOTAL: AtomicU64 = AtomicU64::new(0);

#[queue_command]
fn add_to_total(amount: u64) -> Result<(), String> {
    if amount == 0 {
        return Err("zero is not an amount".into());
    }
    TOTAL.fetch_add(amount, Ordering::SeqCst);
    Ok(())
}

/// Adds after an await, on tokio's timer.
#[queue_command]
async fn add_later(amount: u64) -> Result<(), String> {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    add_to_total::call(amount)
}

#[test]
fn eager_mode_runs_calls_inline() {
    outband::set_eager(true);
    assert!(outband::is_eager());
    add_to_total(5).unwrap();
    add_to_total::schedule(std::time::Duration::from_secs(60), 2).unwrap();
    assert_eq!(
        TOTAL.load(Ordering::SeqCst),
        7,
        "both ran inline, with no queue set"
    );
    let err = add_to_total(0).unwrap_err();
    assert!(
        matches!(&err, outband::Error::CommandFailed { error, .. } if error == "zero is not an amount"),
        "{err}"
    );

    // naming a queue still enqueues
    let backend = MemoryQueue::new();
    add_to_total::enqueue_on(&backend, 100).unwrap();
    assert_eq!(backend.len(outband::DEFAULT_QUEUE).unwrap(), 1);
    assert_eq!(TOTAL.load(Ordering::SeqCst), 7);

    // async commands, and awaited calls of either kind, run inline too;
    // a plain call drives a future using tokio's timer with the `runtime`
    // feature only
    let plain = if cfg!(feature = "runtime") { 10 } else { 0 };
    if plain > 0 {
        add_later(plain).unwrap();
    }
    assert_eq!(
        TOTAL.load(Ordering::SeqCst),
        7 + plain,
        "driven to its end here"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        add_later::enqueue(20).await.unwrap();
        add_to_total::enqueue(40).await.unwrap();
        // a plain call from inside a runtime still runs to its end
        if plain > 0 {
            add_later(8 * plain).unwrap();
        }
        let err = add_later::enqueue(0).await.unwrap_err();
        assert!(matches!(err, outband::Error::CommandFailed { .. }), "{err}");
    });
    assert_eq!(TOTAL.load(Ordering::SeqCst), 67 + 9 * plain);

    // a batch runs each item inline, in order; the first failure ends it
    assert_eq!(add_to_total::enqueue_many([100, 200]).unwrap().len(), 2);
    assert_eq!(TOTAL.load(Ordering::SeqCst), 367 + 9 * plain);
    let err = add_to_total::enqueue_many([1, 0, 1000]).unwrap_err();
    assert!(matches!(err, outband::Error::CommandFailed { .. }), "{err}");
    assert_eq!(
        TOTAL.load(Ordering::SeqCst),
        368 + 9 * plain,
        "stopped at 0"
    );

    outband::set_eager(false);
    assert!(matches!(
        add_to_total(1),
        Err(outband::Error::NoDefaultBackend)
    ));
}
