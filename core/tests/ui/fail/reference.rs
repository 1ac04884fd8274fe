use outband::queue_command;

#[queue_command]
fn greet(name: &str, bytes: &[u8], list: &mut Vec<u64>, nick: Option<&'static str>) {
    let _ = (name, bytes, list, nick);
}

fn main() {}
