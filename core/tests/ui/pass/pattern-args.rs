//! Arguments bound by patterns are plain arguments of the generated functions.

use outband::{Registry, codec, queue_command};

#[queue_command(key = label)]
fn sum((a, b): (u32, u32), _: u8, mut label: String, [x, y]: [u8; 2]) -> String {
    label.push_str(&(a + b + u32::from(x) + u32::from(y)).to_string());
    label
}

fn main() {
    assert_eq!(sum::call((1, 2), 0, "total ".into(), [3, 4]), "total 10");
    assert!(matches!(sum((1, 2), 0, "total ".into(), [3, 4]), Err(outband::Error::NoDefaultBackend)));

    let command = Registry::global().unwrap().get(sum::NAME).unwrap();
    let args = codec::encode(&((1u32, 2u32), 0u8, "total ", [3u8, 4u8])).unwrap();
    let result = command.run_now(&args).unwrap().unwrap();
    assert_eq!(codec::decode::<String>(&result).unwrap(), "total 10");
}
