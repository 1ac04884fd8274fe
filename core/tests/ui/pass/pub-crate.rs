use outband::queue_command;

mod mail {
    use outband::queue_command;

    #[queue_command(queue = "emails")]
    pub(crate) fn send(user_id: u64) -> u64 {
        user_id
    }
}

#[queue_command]
pub(crate) fn local(value: u8) -> u8 {
    value
}

fn main() {
    assert_eq!(mail::send::call(7), 7);
    assert_eq!(mail::send::NAME, concat!(module_path!(), "::mail::send"));
    assert!(matches!(mail::send(7), Err(outband::Error::NoDefaultBackend)));
    assert_eq!(local::call(1), 1);
}
