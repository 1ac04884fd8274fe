use outband::queue_command;

#[queue_command(retries = "many", key = id)]
unsafe fn send<T>(name: &str, value: T) {
    let _ = (name, value);
}

fn main() {}
