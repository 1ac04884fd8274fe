use outband::{Registry, periodic_command};

/// Refreshes the cache every five minutes.
#[periodic_command(cron = "*/5 * * * *", queue = "maintenance", retries = 1)]
fn refresh_cache() -> Result<(), String> {
    Ok(())
}

fn main() {
    let registry = Registry::global().unwrap();
    let periodic = registry.periodic();
    assert_eq!(periodic.len(), 1);
    assert_eq!(periodic[0].cron, "*/5 * * * *");
    assert_eq!(periodic[0].command.name, refresh_cache::NAME);
    assert_eq!(periodic[0].command.queue, "maintenance");
    assert_eq!(periodic[0].command.max_attempts, 2);
    assert_eq!(refresh_cache::call(), Ok(()));
}
