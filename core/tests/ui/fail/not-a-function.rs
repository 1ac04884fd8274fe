use outband::queue_command;

#[queue_command]
struct Mail {
    to: String,
}

fn main() {
    let _ = Mail { to: String::new() }.to;
}
