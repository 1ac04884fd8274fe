use outband::queue_command;

struct Mail {
    to: String,
}

#[queue_command]
fn send(user_id: u64, mail: Mail) {
    let _ = (user_id, mail.to);
}

fn main() {}
