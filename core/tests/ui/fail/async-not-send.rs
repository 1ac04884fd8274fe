use std::rc::Rc;

use outband::queue_command;

#[queue_command]
async fn send(user_id: u64) {
    let shared = Rc::new(user_id);
    tokio::task::yield_now().await;
    let _ = shared;
}

fn main() {}
