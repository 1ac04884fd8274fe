use outband::queue_command;

#[queue_command(key = user)]
fn send_welcome(user_id: u64, template: String) {
    let _ = (user_id, template);
}

#[queue_command(key = a)]
fn add((a, b): (u32, u32)) {
    let _ = a + b;
}

fn main() {}
