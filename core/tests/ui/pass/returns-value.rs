use outband::{Registry, codec, queue_command};

#[queue_command]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[queue_command]
fn greeting(name: String) -> String {
    format!("hello, {name}")
}

fn main() {
    assert_eq!(add::call(2, 3), 5);
    assert_eq!(greeting::call("you".into()), "hello, you");
    assert_eq!(add::NAME, concat!(module_path!(), "::add"));
    assert!(matches!(add(2, 3), Err(outband::Error::NoDefaultBackend)));

    // The runner stores the return value as the job's result.
    let command = Registry::global().unwrap().get(add::NAME).unwrap();
    let result = command.run_now(&codec::encode(&(2u32, 3u32)).unwrap()).unwrap().unwrap();
    assert_eq!(codec::decode::<u32>(&result).unwrap(), 5);
}
