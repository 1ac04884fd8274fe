//! The decoding entry points the fuzzer drives, as plain functions of bytes,
//! so the cargo-fuzz targets in `reliability/fuzz/` and the regular test
//! `tests/fuzz_corpus.rs` run the same code.
//!
//! - [`decode_args`]: the codec, decoding the bytes as argument tuples of
//!   several shapes (integers, strings, nested vectors, options, maps, enums).
//! - [`dispatch`]: a registry's lookup with an arbitrary command name, and the
//!   run function of the command found, decoding its arguments as
//!   `#[queue_command]`'s expansion does (through the same
//!   `outband::__private` helpers). Its commands are built here, not
//!   registered, so no binary that links this crate gains them.
//!
//! Neither may panic, whatever the bytes; the codec promises that a hostile
//! payload costs at most a few times its own size to decode, which the
//! regular test checks by counting allocations.
//!
//! The record decoders of the backends (a SQL row or a Redis hash into a
//! job) are private to their crates, so they are reached only through a
//! claim, by `tests/bad_input.rs`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use outband::__private::{Run, RunError, decode_args as args_of, output_value};
use outband::{Command, Registry, codec};
use serde::{Deserialize, Serialize};

/// A fuzz target: a function of arbitrary bytes that must not panic.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: each is a directory of seeds in
/// `reliability/fuzz/corpus/` and a file in `reliability/fuzz/fuzz_targets/`.
pub const TARGETS: [(&str, Target); 2] = [("decode_args", decode_args), ("dispatch", dispatch)];

/// A record-like value with every kind of field, for the codec.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    limits: BTreeMap<String, i32>,
    payload: Vec<u8>,
    shape: Shape,
}

/// An enum with unit, tuple and struct variants.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Shape {
    /// Nothing.
    Empty,
    /// Two numbers.
    Pair(i64, u8),
    /// Nested values.
    Tree {
        /// Children.
        children: Vec<Vec<u16>>,
        /// A flag.
        leaf: bool,
    },
}

impl Sample {
    /// A small, well-formed sample, for seeds.
    pub fn example(n: u64) -> Self {
        Self {
            id: n,
            name: format!("sample {n}"),
            tags: vec!["a".into(), "bc".into()],
            score: n.is_multiple_of(2).then_some(n as f64 / 3.0),
            limits: [("x".to_owned(), -1), ("y".to_owned(), 7)]
                .into_iter()
                .collect(),
            payload: vec![n as u8; (n % 7) as usize],
            shape: match n % 3 {
                0 => Shape::Empty,
                1 => Shape::Pair(-(n as i64), 3),
                _ => Shape::Tree {
                    children: vec![vec![1, 2], vec![]],
                    leaf: true,
                },
            },
        }
    }
}

/// Decodes `data` as argument tuples of several shapes; only errors may come
/// of it, never a panic.
pub fn decode_args(data: &[u8]) {
    let _ = codec::decode::<(u64,)>(data);
    let _ = codec::decode::<(u64, String)>(data);
    let _ = codec::decode::<(String, Vec<u8>, Option<i64>)>(data);
    let _ = codec::decode::<(Vec<String>, BTreeMap<String, Vec<u32>>)>(data);
    let _ = codec::decode::<(char, bool, f32, i128)>(data);
    let _ = codec::decode::<Sample>(data);
    let _ = codec::decode::<Vec<Sample>>(data);
    let _ = codec::decode::<()>(data);
}

fn run_add(args: &[u8], _: &outband::JobContext) -> Result<Option<Vec<u8>>, RunError> {
    let (a, b): (u64, u64) = args_of(args)?;
    output_value(a.wrapping_add(b))
}

fn run_greet(args: &[u8], _: &outband::JobContext) -> Result<Option<Vec<u8>>, RunError> {
    let (name, times): (String, u8) = args_of(args)?;
    output_value(name.chars().take(usize::from(times)).count())
}

fn run_store(args: &[u8], _: &outband::JobContext) -> Result<Option<Vec<u8>>, RunError> {
    let (sample,): (Sample,) = args_of(args)?;
    output_value(sample.tags.len())
}

fn run_nothing(args: &[u8], _: &outband::JobContext) -> Result<Option<Vec<u8>>, RunError> {
    let (): () = args_of(args)?;
    output_value(())
}

macro_rules! command {
    ($name:literal, $run:ident) => {
        Command {
            name: $name,
            queue: "fuzz",
            max_attempts: 1,
            priority: 0,
            key: None,
            unique: None,
            concurrency: None,
            rate: None,
            backoff: outband::Backoff::Consumer,
            timeout: None,
            show_args: outband::__private::show_no_args,
            show_result: outband::__private::show_no_result,
            file: file!(),
            line: line!(),
            run: Run::Sync($run),
        }
    };
}

static COMMANDS: [Command; 4] = [
    command!("fuzz::add", run_add),
    command!("fuzz::greet", run_greet),
    command!("fuzz::store", run_store),
    command!("fuzz::nothing", run_nothing),
];

/// The registry [`dispatch`] looks names up in.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::from_commands(&COMMANDS).expect("distinct names"))
}

/// Looks a command up and runs it on arguments, both from `data`: the first
/// byte picks a known command (below 4) or gives the length of a name taken
/// from the bytes that follow; the rest are the encoded arguments. An
/// unknown name's error is formatted, as the processor records it.
pub fn dispatch(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (name, args) = if usize::from(first) < COMMANDS.len() {
        (COMMANDS[usize::from(first)].name.to_owned(), rest)
    } else {
        let len = usize::from(first - 4).min(rest.len());
        let (name, args) = rest.split_at(len);
        (String::from_utf8_lossy(name).into_owned(), args)
    };
    match registry().get(&name) {
        Ok(command) => {
            if let Ok(Some(output)) = command.run_now(args) {
                let _ = codec::decode::<u64>(&output);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// Well-formed and near-well-formed inputs for `target`, the seeds of its
/// committed corpus (`reliability/fuzz/corpus/<target>/`).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let encode = |value: &dyn Fn() -> Result<Vec<u8>, codec::CodecError>| value().expect("encodes");
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    match target {
        "decode_args" => {
            seeds.push(encode(&|| codec::encode(&(7u64,))));
            seeds.push(encode(&|| codec::encode(&(300u64, "hello".to_owned()))));
            seeds.push(encode(&|| {
                codec::encode(&("x".to_owned(), vec![1u8, 2, 3], Some(-5i64)))
            }));
            seeds.push(encode(&|| {
                codec::encode(&(
                    vec!["a".to_owned()],
                    BTreeMap::from([("k".to_owned(), vec![1u32])]),
                ))
            }));
            seeds.push(encode(&|| codec::encode(&('é', true, 1.5f32, -1i128))));
            seeds.push(encode(&|| codec::encode(&())));
            for n in 0..6 {
                seeds.push(encode(&|| codec::encode(&Sample::example(n))));
            }
            seeds.push(encode(&|| {
                codec::encode(&vec![Sample::example(1), Sample::example(2)])
            }));
            // hostile length prefixes, an unknown tag, nothing at all
            seeds.push(vec![1, 253, 255, 255, 255, 255, 255, 255, 255, 255]);
            seeds.push(vec![1, 252, 255, 255, 255, 255]);
            seeds.push(vec![9, 0]);
            seeds.push(Vec::new());
        }
        "dispatch" => {
            seeds.push([vec![0], encode(&|| codec::encode(&(1u64, 2u64)))].concat());
            seeds.push(
                [
                    vec![1],
                    encode(&|| codec::encode(&("name".to_owned(), 3u8))),
                ]
                .concat(),
            );
            seeds.push([vec![2], encode(&|| codec::encode(&(Sample::example(4),)))].concat());
            seeds.push([vec![3], encode(&|| codec::encode(&()))].concat());
            let name = b"fuzz::add";
            let len = u8::try_from(name.len() + 4).expect("short");
            seeds.push(
                [
                    vec![len],
                    name.to_vec(),
                    encode(&|| codec::encode(&(5u64, 6u64))),
                ]
                .concat(),
            );
            seeds.push([vec![12], b"no::such".to_vec(), vec![1, 0]].concat());
            seeds.push(
                [
                    vec![0],
                    vec![1, 253, 255, 255, 255, 255, 255, 255, 255, 255],
                ]
                .concat(),
            );
            seeds.push(vec![2, 1, 5]);
        }
        _ => {}
    }
    seeds
}

/// A mutation of `input`: bytes flipped, inserted, removed, duplicated, or a
/// length-prefix-like value spliced in; what a fuzzer does first.
pub fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..5) {
        let at = rng.usize(..=out.len());
        match rng.u8(..6) {
            0 if !out.is_empty() => {
                let i = rng.usize(..out.len());
                out[i] ^= 1 << rng.u8(..8);
            }
            1 => out.insert(at, rng.u8(..)),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 => {
                let prefix = [251u8, 252, 253]
                    .get(rng.usize(..3))
                    .copied()
                    .unwrap_or(251);
                let mut spliced = vec![prefix];
                let len = rng.usize(2..9);
                spliced.extend(std::iter::repeat_with(|| rng.u8(..)).take(len));
                out.splice(at..at, spliced);
            }
            4 if !out.is_empty() => {
                let from = rng.usize(..out.len());
                let chunk = out[from..out.len().min(from + 8)].to_vec();
                out.splice(at..at, chunk);
            }
            _ => out.truncate(at),
        }
    }
    out
}
