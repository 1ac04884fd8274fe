use outband::{Registry, codec, queue_command};

#[queue_command(queue = "maintenance")]
fn purge_sessions() {}

fn main() {
    purge_sessions::call();
    assert!(matches!(purge_sessions(), Err(outband::Error::NoDefaultBackend)));
    assert!(matches!(
        purge_sessions::schedule(std::time::SystemTime::now()),
        Err(outband::Error::NoDefaultBackend)
    ));
    assert_eq!(purge_sessions::NAME, concat!(module_path!(), "::purge_sessions"));

    let command = Registry::global().unwrap().get(purge_sessions::NAME).unwrap();
    assert_eq!(command.queue, "maintenance");
    assert!(!command.is_async());
    assert!(matches!(command.run_now(&codec::encode(&()).unwrap()), Ok(None)));
}
