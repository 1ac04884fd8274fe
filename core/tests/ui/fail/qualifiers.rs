use outband::queue_command;

#[queue_command]
const fn constant(user_id: u64) -> u64 {
    user_id
}

#[queue_command]
unsafe fn dangerous(user_id: u64) {
    let _ = user_id;
}

#[queue_command]
extern "C" fn foreign(user_id: u64) {
    let _ = user_id;
}

fn main() {}
