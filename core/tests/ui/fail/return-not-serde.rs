use outband::queue_command;

struct Receipt;

#[queue_command]
fn send(user_id: u64) -> Receipt {
    let _ = user_id;
    Receipt
}

#[derive(Debug)]
struct Failure;

#[queue_command]
fn try_send(user_id: u64) -> Result<(), Failure> {
    let _ = user_id;
    Err(Failure)
}

fn main() {}
