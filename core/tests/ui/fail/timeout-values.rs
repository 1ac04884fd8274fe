use outband::queue_command;

#[queue_command(timeout = "soon")]
fn unreadable() {}

#[queue_command(timeout = "0s")]
fn zero() {}

#[queue_command(timeout = "500us")]
fn under_a_millisecond() {}

#[queue_command(timeout = 30)]
fn not_a_string() {}

fn main() {}
