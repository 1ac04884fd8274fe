//! Decoding of job arguments through the codec, as argument tuples of
//! several shapes: `outband_reliability::fuzz::decode_args`.
//!
//! Run with: `RUSTC_BOOTSTRAP=1 cargo fuzz run decode_args` in `reliability/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| outband_reliability::fuzz::decode_args(data));
