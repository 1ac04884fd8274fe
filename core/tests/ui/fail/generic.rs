use outband::queue_command;

#[queue_command]
fn with_type<T: serde::Serialize>(value: T) {
    let _ = value;
}

#[queue_command]
fn with_lifetime<'a>(text: std::borrow::Cow<'a, str>) {
    let _ = text;
}

#[queue_command]
fn with_where_clause(count: u32)
where
    u32: Copy,
{
    let _ = count;
}

fn main() {}
