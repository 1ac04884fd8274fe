use std::time::Duration;

use outband::{BaseQueue, MemoryQueue, Registry, codec, periodic_command, queue_command};

/// Takes every option the plain form takes.
#[queue_command(name = "mail::send", queue = "mail", retries = 2, key = user_id, priority = 3)]
async fn send(user_id: u64, body: String) -> Result<usize, std::io::Error> {
    tokio::task::yield_now().await;
    let _ = user_id;
    Ok(body.len())
}

#[queue_command]
async fn no_result() {}

#[periodic_command(cron = "0 * * * * *")]
async fn tick() {}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // `call` is the body's future
    let future = send::call(7, "hello".into());
    assert_eq!(runtime.block_on(future).unwrap(), 5);
    runtime.block_on(no_result::call());

    let command = Registry::global().unwrap().get(send::NAME).unwrap();
    assert!(command.is_async());
    assert_eq!((command.queue, command.max_attempts, command.priority), ("mail", 3, 3));
    let output = command.run_now(&codec::encode(&(7u64, "hi".to_owned())).unwrap());
    assert_eq!(codec::decode::<usize>(&output.unwrap().unwrap()).unwrap(), 2);
    assert!(Registry::global().unwrap().get(tick::NAME).unwrap().is_async());

    // the plain and the awaited enqueue, for an async command
    let backend = std::sync::Arc::new(MemoryQueue::new());
    send::enqueue_on(&*backend, 1, "a".into()).unwrap();
    let id = runtime
        .block_on(
            send::enqueue(2, "b".into())
                .at(Duration::from_secs(60))
                .on(&backend)
                .into_future(),
        )
        .unwrap();
    let job = backend.job(id.id()).unwrap().unwrap();
    assert_eq!(job.key.as_deref(), Some("2"));
    assert_eq!(backend.len("mail").unwrap(), 2);
    assert!(matches!(
        runtime.block_on(no_result::enqueue().into_future()),
        Err(outband::Error::NoDefaultBackend)
    ));
}

use std::future::IntoFuture;
