use outband::queue_command;

#[queue_command]
fn send(template: impl Into<String>) {
    let _ = template.into();
}

fn main() {}
