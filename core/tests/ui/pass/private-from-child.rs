use outband::queue_command;

#[queue_command]
fn reindex(shard: u16) -> u16 {
    shard
}

mod handlers {
    pub(crate) fn run_now() -> u16 {
        super::reindex::call(3)
    }

    pub(crate) fn enqueue() -> Result<outband::JobHandle<u16>, outband::Error> {
        super::reindex(3)
    }

    pub(crate) mod nested {
        pub(crate) const NAME: &str = super::super::reindex::NAME;
    }
}

fn main() {
    assert_eq!(handlers::run_now(), 3);
    assert!(matches!(handlers::enqueue(), Err(outband::Error::NoDefaultBackend)));
    assert!(handlers::nested::NAME.ends_with("::reindex"));
}
