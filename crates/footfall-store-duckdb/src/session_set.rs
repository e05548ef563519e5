//! `ff_matching(UBIGINT set, UBIGINT session_id) -> BOOLEAN`: whether a visit is in a
//! dashboard load's shared matching visits (`matching.rs`), tested against a bitmap of
//! their session ids instead of joined to their table.
//!
//! Why: with an event filter (`page=/`), each `visit:*` breakdown of a load picked its
//! visits by joining the load's ~350k matching session ids to `sessions`: DuckDB hashed
//! them and probed every visit of the range, ~10 of each breakdown's ~20 ms at 10M
//! events. Session ids are consecutive within a server run (`SessionIds`), so the set
//! is a few hundred KB of bits that stay in the caches, and the breakdown becomes a
//! filter on its scan of `sessions` (docs/ARCHITECTURE.md, "Matching visits").
//!
//! The sets live in a process-wide registry under a handle that is unique per store and
//! set (`MatchingSets::handle`); a set is published when its table is made and withdrawn
//! when its table is dropped. Queries take turns, so no query reads a set while another
//! withdraws it.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, LazyLock};

use duckdb::ffi;
use parking_lot::RwLock;

/// The SQL name of the function.
pub const NAME: &str = "ff_matching";

/// Ids per chunk: a chunk is a bitmap of 2^16 ids (8 KB).
const CHUNK_BITS: u32 = 16;
const CHUNK_WORDS: usize = (1 << CHUNK_BITS) / 64;

/// Session ids as bitmaps of 2^16 consecutive ids, for the chunks that hold any.
#[derive(Default, Debug)]
pub struct SessionSet {
    /// (id >> 16, its bits), sorted by the first.
    chunks: Vec<(u64, Box<[u64; CHUNK_WORDS]>)>,
}

impl SessionSet {
    /// The set of `ids` (any order, repeats allowed).
    pub fn from_ids(ids: impl IntoIterator<Item = u64>) -> SessionSet {
        let mut chunks: HashMap<u64, Box<[u64; CHUNK_WORDS]>> = HashMap::new();
        for id in ids {
            let bits = chunks
                .entry(id >> CHUNK_BITS)
                .or_insert_with(|| Box::new([0; CHUNK_WORDS]));
            let low = (id & ((1 << CHUNK_BITS) - 1)) as usize;
            bits[low / 64] |= 1 << (low % 64);
        }
        let mut chunks: Vec<_> = chunks.into_iter().collect();
        chunks.sort_unstable_by_key(|c| c.0);
        SessionSet { chunks }
    }

    /// Whether `id` is in the set; `hint` is the chunk the previous lookup found (ids
    /// come in runs from one chunk: `sessions` is in id order).
    #[inline]
    fn contains(&self, id: u64, hint: &mut usize) -> bool {
        let high = id >> CHUNK_BITS;
        let chunk = match self.chunks.get(*hint) {
            Some(c) if c.0 == high => &c.1,
            _ => match self.chunks.binary_search_by_key(&high, |c| c.0) {
                Ok(i) => {
                    *hint = i;
                    &self.chunks[i].1
                }
                Err(_) => return false,
            },
        };
        let low = (id & ((1 << CHUNK_BITS) - 1)) as usize;
        chunk[low / 64] & (1 << (low % 64)) != 0
    }
}

/// The published sets by handle.
static SETS: LazyLock<RwLock<HashMap<u64, Arc<SessionSet>>>> = LazyLock::new(Default::default);

/// Makes `set` readable by `ff_matching(handle, ...)`, replacing any set of that handle.
pub(crate) fn publish(handle: u64, set: SessionSet) {
    SETS.write().insert(handle, Arc::new(set));
}

/// Forgets the set of `handle`.
pub(crate) fn withdraw(handle: u64) {
    SETS.write().remove(&handle);
}

/// Whether a set is published under `handle`.
#[cfg(test)]
pub(crate) fn published(handle: u64) -> bool {
    SETS.read().contains_key(&handle)
}

unsafe extern "C" fn matching(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: two UBIGINT columns, flattened by DuckDB's C API (NOT NULL: a bound
    // handle and `sessions.session_id`), and a BOOLEAN output of the chunk's size.
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        if rows == 0 {
            return;
        }
        let handles =
            ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, 0)) as *const u64;
        let ids =
            ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, 1)) as *const u64;
        let out = ffi::duckdb_vector_get_data(output) as *mut bool;
        let Some(set) = SETS.read().get(&*handles).cloned() else {
            // Unreachable while queries take turns; an error rather than a wrong count.
            let message = c"ff_matching: the matching visits were dropped";
            ffi::duckdb_scalar_function_set_error(info, message.as_ptr());
            return;
        };
        let mut hint = 0;
        for row in 0..rows {
            *out.add(row) = set.contains(*ids.add(row), &mut hint);
        }
    }
}

/// Registers `ff_matching` in the database `conn` belongs to.
///
/// # Safety
/// `conn` must be an open connection.
pub unsafe fn register(conn: ffi::duckdb_connection) -> Result<(), String> {
    let c_name = CString::new(NAME).map_err(|e| e.to_string())?;
    unsafe {
        let mut function = ffi::duckdb_create_scalar_function();
        ffi::duckdb_scalar_function_set_name(function, c_name.as_ptr());
        for _ in 0..2 {
            let mut id_type = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT);
            ffi::duckdb_scalar_function_add_parameter(function, id_type);
            ffi::duckdb_destroy_logical_type(&mut id_type);
        }
        let mut bool_type = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN);
        ffi::duckdb_scalar_function_set_return_type(function, bool_type);
        ffi::duckdb_destroy_logical_type(&mut bool_type);
        ffi::duckdb_scalar_function_set_function(function, Some(matching));
        let state = ffi::duckdb_register_scalar_function(conn, function);
        ffi::duckdb_destroy_scalar_function(&mut function);
        if state == ffi::duckdb_state_DuckDBSuccess {
            Ok(())
        } else {
            Err(format!("cannot register the {NAME} function"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_exactly_the_ids_across_chunks() {
        let ids: Vec<u64> = (0..200_000u64)
            .map(|i| 1_796_556_608_526_457 + i * 3)
            .chain([5, 1 << 40])
            .collect();
        let set = SessionSet::from_ids(ids.iter().copied());
        let mut hint = 0;
        for &id in &ids {
            assert!(set.contains(id, &mut hint), "{id}");
        }
        for id in [0u64, 4, 6, 1_796_556_608_526_458, (1 << 40) + 1, u64::MAX] {
            assert!(!set.contains(id, &mut hint), "{id}");
        }
    }
}
