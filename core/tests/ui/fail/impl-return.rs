use outband::queue_command;

#[queue_command]
fn summary(n: u32) -> impl serde::Serialize {
    n * 2
}

#[queue_command]
fn maybe(n: u32) -> Result<Vec<impl serde::Serialize>, String> {
    Ok(vec![n])
}

fn main() {}
