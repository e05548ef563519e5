//! De-dup set lookups on one core, as bulk acceptance makes them: `cargo bench
//! -p footfall-ingest --bench dedup` (add `-- --quick` for a shorter run).
//!
//! A set of 10M stored ids (the client ids of a 10M-event store), then rounds of 10,000
//! fresh ids (one bulk request's) checked and inserted: one by one with `Dedup::insert`,
//! and as one request's batch with `Dedup::insert_batch` (the acceptance path), in
//! alternating rounds so drift hits both alike. The rounds' ids stay in the pending part
//! (not folded), which grows alike for both ways.

mod common;

use std::hint::black_box;
use std::time::Instant;

use footfall_ingest::dedup::{Dedup, IdLoader};
use rand::{RngCore, SeedableRng};

const STORED: usize = 10_000_000;
const BATCH: usize = 10_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 11 } else { 51 };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let stored: Vec<u64> = (0..STORED).map(|_| rng.next_u64()).collect();
    let dir = tempfile::tempdir().expect("temporary directory");
    let set = Dedup::in_dir(dir.path().to_path_buf());
    let mut loader = IdLoader::default();
    loader.count(&stored);
    loader.place(&stored);
    set.load(loader);
    drop(stored);

    let (mut single, mut batch) = (Vec::new(), Vec::new());
    let mut fresh = || (0..BATCH).map(|_| rng.next_u64()).collect::<Vec<u64>>();
    for _ in 0..rounds {
        let ids = fresh();
        let t = Instant::now();
        for &id in &ids {
            black_box(set.insert(black_box(id)));
        }
        single.push(t.elapsed());

        let ids = fresh();
        let t = Instant::now();
        black_box(set.insert_batch(black_box(&ids)));
        batch.push(t.elapsed());
    }
    let (a, b) = (
        common::median_ns_per(&mut batch, BATCH),
        common::median_ns_per(&mut single, BATCH),
    );
    println!(
        "de-dup set: {STORED} stored ids, rounds of {BATCH} fresh ids ({rounds} rounds, median)\n  \
         insert_batch (acceptance): {a:.0} ns/id\n  insert one by one (baseline): {b:.0} ns/id\n  \
         speed-up: {:.2}x",
        b / a
    );
}
