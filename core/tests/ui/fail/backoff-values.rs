use outband::queue_command;

#[queue_command(backoff = 30)]
fn backoff_not_string() {}

#[queue_command(backoff = "linear(1s)")]
fn backoff_unknown() {}

#[queue_command(backoff = "fixed(30 parsecs)")]
fn backoff_bad_duration() {}

#[queue_command(backoff = "exponential(1h, 1m)")]
fn backoff_base_over_max() {}

#[queue_command(backoff = "exponential(30s)")]
fn backoff_missing_max() {}

#[queue_command(backof = "none")]
fn backoff_misspelt() {}

fn main() {}
