//! **Fuzzing, as a regular test**: the fuzz targets' code
//! (`outband_reliability::fuzz`) run over the committed seed corpus
//! (`reliability/fuzz/corpus/<target>/`) and over 100,000 inputs made from it
//! by seeded mutations (`fuzz::mutate`), so every run sees the same inputs.
//!
//! What it proves: decoding job arguments through the codec, and a registry's
//! dispatch with arbitrary command names and arguments, never panic, and
//! never allocate more than 64 times the input's size plus 4 MiB at any one
//! input (allocations are counted by a counting global allocator; see
//! `allowance` for why 4 MiB), so a hostile length prefix never turns into
//! an allocation of its own size.
//!
//! The corpus is made by `fuzz::seeds`; after changing them, rewrite it with
//! `OUTBAND_WRITE_CORPUS=1 cargo test -p outband-reliability --test fuzz_corpus`.
//! Longer fuzzing is `cargo fuzz`'s job: see `reliability/fuzz/README.md`.
//!
//! Run it alone: `cargo test -p outband-reliability --test fuzz_corpus`
//! (add `-- --nocapture` to see the counts).

use std::alloc::System;
use std::path::PathBuf;

use outband_reliability::fuzz::{self, TARGETS};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Generated inputs, over all targets.
const MUTATIONS: usize = 100_000;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The bytes one input may allocate while it is decoded, over all the types
/// a target tries.
///
/// Not the codec's "a few times its own size": serde preallocates a sequence
/// from its claimed length, capped at 1 MiB, before the elements are read, so
/// a 6-byte input that claims 2³² strings costs 1 MiB per sequence type tried
/// (found by this test; the codec's docs promise more than it keeps). The
/// allowance takes that cap into account and still catches any allocation
/// that follows a claimed length past it.
fn allowance(input: &[u8]) -> usize {
    64 * input.len() + 4 * 1024 * 1024
}

/// Runs `target` on `input`, returning the bytes it allocated.
fn allocated_by(target: fuzz::Target, input: &[u8]) -> usize {
    let region = Region::new(ALLOCATOR);
    target(input);
    region.change().bytes_allocated
}

// One test, so that no other test's allocations are counted with these.
#[test]
fn the_fuzz_targets_survive_their_corpus_and_its_mutations() {
    if std::env::var("OUTBAND_WRITE_CORPUS").is_ok_and(|v| v == "1") {
        for (name, _) in TARGETS {
            let dir = corpus_dir(name);
            std::fs::create_dir_all(&dir).expect("corpus directory");
            for (i, seed) in fuzz::seeds(name).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("written");
            }
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x0F0F_2026);
    let mut worst = 0.0f64;
    for (name, target) in TARGETS {
        let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(corpus_dir(name))
            .expect("the committed corpus")
            .map(|entry| std::fs::read(entry.expect("entry").path()).expect("readable"))
            .collect();
        corpus.sort();
        assert!(
            corpus.len() >= 8,
            "{name}: the corpus has {} inputs",
            corpus.len()
        );
        let mutations: Vec<Vec<u8>> = (0..MUTATIONS / TARGETS.len())
            .map(|_| {
                let seed = &corpus[rng.usize(..corpus.len())];
                fuzz::mutate(&mut rng, seed)
            })
            .collect();
        for input in corpus.iter().chain(&mutations) {
            let bytes = allocated_by(target, input);
            assert!(
                bytes <= allowance(input),
                "{name}: {bytes} bytes allocated for an input of {} bytes: {input:?}",
                input.len()
            );
            worst = worst.max(bytes as f64 / allowance(input) as f64);
        }
        println!(
            "fuzz_corpus/{name}: {} corpus inputs and {} mutations, no panic",
            corpus.len(),
            mutations.len()
        );
    }
    println!(
        "fuzz_corpus: the most any input allocated was {:.1} % of its allowance",
        worst * 100.0
    );
}
