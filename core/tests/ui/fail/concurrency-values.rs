use outband::queue_command;

#[queue_command(concurrency = 0)]
fn zero(account: u64) {}

#[queue_command(concurrency = "3")]
fn quoted(account: u64) {}

#[queue_command(concurrency = -1)]
fn negative(account: u64) {}

#[queue_command(concurrency)]
fn bare(account: u64) {}

#[queue_command(concurrency(by = account))]
fn no_max(account: u64) {}

#[queue_command(concurrency(max = 0, by = account))]
fn zero_in_list(account: u64) {}

#[queue_command(concurrency(max = 2, by = user))]
fn no_such_argument(account: u64) {}

#[queue_command(concurrency(max = 2, per = account))]
fn unknown_option(account: u64) {}

#[queue_command(concurrency = 2, concurrency = 3)]
fn twice(account: u64) {}

fn main() {}
