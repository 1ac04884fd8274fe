use outband::queue_command;

#[queue_command(retry = 3)]
fn misspelled(user_id: u64) {
    let _ = user_id;
}

#[queue_command(eager)]
fn unknown(user_id: u64) {
    let _ = user_id;
}

fn main() {}
