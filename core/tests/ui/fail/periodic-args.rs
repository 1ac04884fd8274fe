use outband::periodic_command;

#[periodic_command(cron = "*/5 * * * *")]
fn refresh(table: String) {
    let _ = table;
}

fn main() {}
