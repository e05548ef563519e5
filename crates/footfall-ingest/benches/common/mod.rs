//! What the benches share (a module, not a bench: Cargo builds only `benches/*.rs` and
//! `benches/*/main.rs` as benches).
use std::time::Duration;

/// The median of a round's times (the upper one of an even count), in nanoseconds per
/// item when each round handled `items`.
pub fn median_ns_per(times: &mut [Duration], items: usize) -> f64 {
    times.sort();
    times[times.len() / 2].as_nanos() as f64 / items as f64
}
