use outband::queue_command;

#[derive(serde::Serialize, serde::Deserialize)]
struct UserId(u64);

#[queue_command(key = user)]
fn send(user: UserId) {
    let _ = user.0;
}

fn main() {}
