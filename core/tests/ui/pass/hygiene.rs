//! Argument names that the generated functions use themselves, a raw
//! identifier, and a command behind `#[cfg]`.

use outband::queue_command;

#[queue_command(key = queue)]
fn route(queue: String, backend: u8, at_or_after: u64, args: Vec<u8>, outband_key: u8, outband_arg0: u8) -> usize {
    queue.len() + args.len() + usize::from(backend + outband_key + outband_arg0) + at_or_after as usize
}

#[queue_command]
fn r#type(r#in: u8) -> u8 {
    r#in
}

#[cfg(any())]
#[queue_command]
fn never(value: u8) -> u8 {
    value
}

/// A user type named like the generated generic parameter.
#[derive(serde::Serialize, serde::Deserialize)]
struct Q(u8);

#[queue_command]
fn with_q(q: Q) -> u8 {
    q.0
}

fn main() {
    assert_eq!(route::call("ab".into(), 1, 1, vec![1], 1, 1), 7);
    assert_eq!(r#type::call(3), 3);
    assert!(r#type::NAME.ends_with("::type"));
    assert_eq!(with_q::call(Q(2)), 2);
    assert!(matches!(with_q(Q(2)), Err(outband::Error::NoDefaultBackend)));
}
