use outband::queue_command;

#[queue_command(rate = "0/s")]
fn zero(_account: u64) {}

#[queue_command(rate = 100)]
fn not_a_string(_account: u64) {}

#[queue_command(rate = "100")]
fn no_period(_account: u64) {}

#[queue_command(rate = "100/fortnight")]
fn unknown_period(_account: u64) {}

#[queue_command(rate = "many/s")]
fn not_a_number(_account: u64) {}

#[queue_command(rate = "5/0s")]
fn empty_period(_account: u64) {}

#[queue_command(rate(by = account))]
fn no_limit(account: u64) {}

#[queue_command(rate(limit = "5/s", by = user))]
fn no_such_argument(account: u64) {}

#[queue_command(rate(limit = "5/s", per = account))]
fn unknown_option(account: u64) {}

fn main() {}
