use outband::queue_command;
use std::borrow::Cow;

#[queue_command]
fn greet(name: Cow<'_, str>) {
    let _ = name;
}

fn main() {}
