//! Every option at once, checked through the registry and a `MemoryQueue`.

use outband::{BaseQueue, MemoryQueue, Registry, queue_command};

/// Sends the welcome mail.
#[queue_command(name = "app::send_welcome", queue = "emails", retries = 5, backoff = "exponential(2s, 10m)", key = user_id, priority = -3)]
pub fn send_welcome(user_id: u64, template: String) -> Result<(), String> {
    if template.is_empty() {
        return Err(format!("no template for user {user_id}"));
    }
    Ok(())
}

fn main() {
    assert_eq!(send_welcome::NAME, "app::send_welcome");
    assert_eq!(send_welcome::call(7, "hi".into()), Ok(()));
    assert!(send_welcome::call(7, String::new()).is_err());

    // No default backend is set.
    assert!(matches!(send_welcome(7, "hi".into()), Err(outband::Error::NoDefaultBackend)));
    assert!(matches!(
        send_welcome::schedule(std::time::Duration::from_secs(300), 7, "hi".into()),
        Err(outband::Error::NoDefaultBackend)
    ));

    let command = Registry::global().unwrap().get("app::send_welcome").unwrap();
    assert_eq!(command.queue, "emails");
    assert_eq!(command.max_attempts, 6);
    assert_eq!(command.priority, -3);
    assert_eq!(command.key, Some("user_id"));
    assert_eq!(
        command.backoff,
        outband::Backoff::Exponential {
            base: std::time::Duration::from_secs(2),
            max: std::time::Duration::from_secs(600),
        }
    );
    assert!(command.file.ends_with("all-options.rs"));
    assert_eq!(command.line, 7);

    let backend = MemoryQueue::new();
    let id = send_welcome::enqueue_on(&backend, 7, "hi".into()).unwrap();
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!(job.command, "app::send_welcome");
    assert_eq!(job.queue, "emails");
    assert_eq!(job.key.as_deref(), Some("7"));
    assert_eq!(job.priority, -3);
    assert_eq!(job.max_attempts, 6);
    assert_eq!(outband::codec::decode::<(u64, String)>(&job.args).unwrap(), (7, "hi".to_owned()));

    // The runner decodes the arguments and turns an `Err` into a failed attempt.
    assert!(matches!(command.run_now(&job.args), Ok(None)));
    let empty = outband::codec::encode(&(7u64, String::new())).unwrap();
    assert!(command.run_now(&empty).is_err());

    let shared: &dyn BaseQueue = &backend;
    send_welcome::enqueue_on(shared, 8, "hi".into()).unwrap();
}
