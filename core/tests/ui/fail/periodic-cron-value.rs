use outband::periodic_command;

#[periodic_command(cron = 5)]
fn refresh() {}

#[periodic_command(cron = "* * * * *", cron = "*/2 * * * *")]
fn twice() {}

fn main() {}
