use outband::queue_command;

#[queue_command(queue = "emails", retries = 1, queue = "mail")]
fn send(user_id: u64) {
    let _ = user_id;
}

fn main() {}
