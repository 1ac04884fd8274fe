//! A `JobContext` parameter, by reference or by value, anywhere in the list,
//! in plain and async commands, periodic ones too: the enqueueing functions
//! leave it out, `call` takes it.

use outband::{JobContext, MemoryQueue, codec, periodic_command, queue_command};

#[queue_command(key = user)]
fn by_ref(ctx: &JobContext, user: u64, note: String) -> usize {
    let _ = (ctx.attempt(), user);
    note.len()
}

#[queue_command]
fn by_value(count: u32, ctx: outband::JobContext) -> u32 {
    ctx.progress(0.5, "half");
    count
}

#[queue_command]
fn pattern(_: &JobContext, (a, b): (u8, u8)) -> u16 {
    u16::from(a) + u16::from(b)
}

#[queue_command]
async fn in_async(ctx: &JobContext, user: u64) -> u64 {
    ctx.cancelled().await;
    user
}

#[queue_command(timeout = "1m 30s")]
async fn in_async_by_value(user: u64, ctx: JobContext) -> u64 {
    ctx.heartbeat();
    user
}

#[periodic_command(cron = "0 * * * * *")]
fn tick(ctx: &JobContext) {
    let _ = ctx.id();
}

fn main() {
    let backend = MemoryQueue::new();
    by_ref::enqueue_on(&backend, 7, "hi".into()).unwrap();
    by_value::enqueue_on(&backend, 3).unwrap();
    pattern::enqueue_on(&backend, (1, 2)).unwrap();
    in_async::enqueue_on(&backend, 1).unwrap();
    in_async_by_value::enqueue_on(&backend, 1).unwrap();
    let _ = by_ref::job(7, "hi".into()).unwrap();
    let _ = by_value::enqueue_many_on(&backend, [1, 2]).unwrap();

    let ctx = JobContext::detached();
    assert_eq!(by_ref::call(&ctx, 7, "hi".into()), 2);
    assert_eq!(by_value::call(3, ctx.clone()), 3);
    assert_eq!(pattern::call(&ctx, (1, 2)), 3);
    tick::call(&ctx);

    let registry = outband::Registry::global().unwrap();
    let timeout = registry.get(in_async_by_value::NAME).unwrap().timeout;
    assert_eq!(timeout, Some(std::time::Duration::from_secs(90)));

    // the registered runner gets the arguments alone
    let command = outband::Registry::global().unwrap().get(pattern::NAME).unwrap();
    let result = command.run_now(&codec::encode(&((1u8, 2u8),)).unwrap()).unwrap().unwrap();
    assert_eq!(codec::decode::<u16>(&result).unwrap(), 3);
}
