//! How `job ID` shows a stored job: `Command::args_json` decodes the
//! arguments through the command's types and names them as the function
//! does; `Command::result_json` reads a result back through the return
//! type, where that type can be read back.

use outband::{Registry, codec, queue_command};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Area {
    value: u64,
    unit: String,
}

/// Serializes only: its results cannot be read back.
#[derive(Serialize)]
struct Receipt {
    id: u64,
}

#[queue_command]
fn area((width, height): (u32, u32), unit: String) -> Result<Area, String> {
    Ok(Area {
        value: u64::from(width) * u64::from(height),
        unit,
    })
}

#[queue_command]
fn receipt(id: u64) -> Receipt {
    Receipt { id }
}

#[queue_command]
fn nothing() {}

#[test]
fn arguments_are_shown_by_name_through_the_commands_types() {
    let command = Registry::global().unwrap().get(area::NAME).unwrap();
    let args = codec::encode(&((3u32, 4u32), "cm")).unwrap();
    assert_eq!(
        command.args_json(&args).unwrap(),
        r#"{"arg1": [3,4], "unit": "cm"}"#
    );
    let error = command.args_json(&[0xff, 0x00]).unwrap_err();
    assert!(
        error.starts_with("the arguments cannot be decoded"),
        "{error}"
    );

    let nothing = Registry::global().unwrap().get(nothing::NAME).unwrap();
    assert_eq!(
        nothing.args_json(&codec::encode(&()).unwrap()).unwrap(),
        "{}"
    );
}

#[test]
fn results_are_shown_through_the_return_type_when_it_can_be_read_back() {
    let registry = Registry::global().unwrap();
    let area = registry.get(area::NAME).unwrap();
    let stored = codec::encode(&area::call((3, 4), "cm".into()).unwrap()).unwrap();
    assert_eq!(
        area.result_json(&stored),
        Some(Ok(r#"{"value":12,"unit":"cm"}"#.to_owned()))
    );
    assert!(matches!(area.result_json(&[0xff]), Some(Err(_))));

    let receipt = registry.get(receipt::NAME).unwrap();
    let stored = codec::encode(&receipt::call(7)).unwrap();
    assert_eq!(receipt.result_json(&stored), None, "not DeserializeOwned");
}
