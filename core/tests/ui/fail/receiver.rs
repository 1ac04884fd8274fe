use outband::queue_command;

struct Mailer;

impl Mailer {
    #[queue_command]
    fn send(&self, user_id: u64) {
        let _ = user_id;
    }
}

fn main() {}
