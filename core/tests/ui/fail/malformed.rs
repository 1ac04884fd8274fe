use outband::queue_command;

#[queue_command(queue "emails")]
fn send(user_id: u64) {
    let _ = user_id;
}

fn main() {}
