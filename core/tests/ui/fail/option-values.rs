use outband::queue_command;

#[queue_command(retries = "3")]
fn retries_string() {}

#[queue_command(retries = 4294967295)]
fn retries_too_many() {}

#[queue_command(retries = -1)]
fn retries_negative() {}

#[queue_command(retries = 3u8)]
fn retries_suffix() {}

#[queue_command(retries)]
fn retries_no_value() {}

#[queue_command(priority = 40000)]
fn priority_too_high() {}

#[queue_command(priority = -32769)]
fn priority_too_low() {}

#[queue_command(name = 5)]
fn name_not_string() {}

#[queue_command(queue = "")]
fn queue_empty() {}

#[queue_command(key = "user_id")]
fn key_string(user_id: u64) {
    let _ = user_id;
}

#[queue_command(queue("emails"))]
fn queue_list() {}

fn main() {}
