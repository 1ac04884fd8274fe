//! A registry's lookup of an arbitrary command name, and the command's run
//! function on arbitrary arguments: `outband_reliability::fuzz::dispatch`.
//!
//! Run with: `RUSTC_BOOTSTRAP=1 cargo fuzz run dispatch` in `reliability/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| outband_reliability::fuzz::dispatch(data));
