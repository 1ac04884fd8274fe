use outband::{Registry, codec, queue_command};

#[queue_command(retries = 0)]
fn parse(text: String) -> Result<u32, String> {
    text.parse().map_err(|error| format!("{text:?}: {error}"))
}

#[queue_command]
fn touch(path: std::path::PathBuf) -> std::io::Result<()> {
    let _ = path;
    Ok(())
}

fn main() {
    assert_eq!(parse::call("42".into()), Ok(42));
    assert!(parse::call("x".into()).is_err());
    assert!(touch::call("/tmp".into()).is_ok());
    assert!(matches!(parse("42".into()), Err(outband::Error::NoDefaultBackend)));

    // `Ok` is stored as the result, `Err` fails the attempt with its text.
    let command = Registry::global().unwrap().get(parse::NAME).unwrap();
    assert_eq!(command.max_attempts, 1);
    let ok = command.run_now(&codec::encode(&("42",)).unwrap()).unwrap().unwrap();
    assert_eq!(codec::decode::<u32>(&ok).unwrap(), 42);
    assert!(command.run_now(&codec::encode(&("x",)).unwrap()).is_err());
}
