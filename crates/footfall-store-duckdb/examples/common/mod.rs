//! What the experiment examples share (a module, not an example: Cargo builds only
//! `examples/*.rs` and `examples/*/main.rs` as examples).
use footfall_store_duckdb::database::Database;

/// Opens a copy of a store read-only with footfall's functions (`ff_uniq`), under the
/// query connections' limits: 2 threads, 128 MB.
pub fn open_copy(path: &str) -> Result<Database, String> {
    Database::open(
        Some(std::path::Path::new(path)),
        &[
            ("access_mode", "READ_ONLY"),
            ("threads", "2"),
            ("max_memory", "128MB"),
        ],
    )
}

/// The median of timings (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
