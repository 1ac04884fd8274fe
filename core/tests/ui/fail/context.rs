use outband::{JobContext, queue_command};

#[queue_command]
fn twice(first: &JobContext, second: JobContext) {
    let _ = (first, second);
}

#[queue_command]
fn mutable(ctx: &mut JobContext) {
    let _ = ctx;
}

#[queue_command(key = ctx)]
fn keyed(ctx: &JobContext, user: u64) {
    let _ = (ctx, user);
}

fn main() {}
