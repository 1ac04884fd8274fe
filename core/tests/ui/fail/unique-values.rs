use outband::queue_command;

#[queue_command(unique = "account")]
fn name_value(account: u64) {}

#[queue_command(unique(by = "account"))]
fn quoted(account: u64) {}

#[queue_command(unique(by = user))]
fn no_such_argument(account: u64) {}

#[queue_command(unique(by = account, key = "k"))]
fn by_and_key(account: u64) {}

#[queue_command(unique(until = "done"))]
fn unknown_scope(account: u64) {}

#[queue_command(unique(window = "0s"))]
fn zero_window(account: u64) {}

#[queue_command(unique(window = "soon", until = "started"))]
fn unreadable_window(account: u64) {}

#[queue_command(unique(until = "started", window = "1h"))]
fn until_and_window(account: u64) {}

#[queue_command(unique(per = account))]
fn unknown_option(account: u64) {}

fn main() {}
