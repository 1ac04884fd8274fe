use outband::periodic_command;

#[periodic_command(queue = "maintenance")]
fn refresh() {}

fn main() {}
