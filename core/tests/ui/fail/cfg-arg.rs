use outband::queue_command;

#[queue_command]
fn send(user_id: u64, #[cfg(unix)] template: String) {
    let _ = user_id;
    #[cfg(unix)]
    let _ = template;
}

fn main() {}
