//! A dashboard load's shared matching visits (`matching.rs`) as an in-memory map from
//! session id to visitor number, read by two scalar functions:
//!
//! - `ff_matching(UBIGINT map, UBIGINT session_id) -> BOOLEAN`: whether the visit is one
//!   of them;
//! - `ff_visitor_no(UBIGINT map, UBIGINT session_id) -> UINTEGER`: its visitor's number,
//!   NULL when it is not one of them.
//!
//! Why: with an event filter (`page=/`), each `visit:*` breakdown of a load picked its
//! visits by joining the load's ~350k matching session ids to `sessions`, and the
//! timeseries and the page breakdown joined their matching events to those visits for
//! the visitor: DuckDB hashed ~350k visits and probed each visit or event of the range
//! every time. Session ids are consecutive within a server run (`SessionIds`), so the
//! map is a bitmap per 2^16 ids with the visitor numbers of the set bits beside it
//! (~1.5 MB for ~350k visits), and those queries become a filter or a lookup on their
//! scan (docs/ARCHITECTURE.md, "Matching visits").
//!
//! The maps live in a process-wide registry under a handle that is unique per store and
//! set (`MatchingSets::handle`); a map is published when its table is made and withdrawn
//! when its table is dropped. Queries take turns, so no query reads a map while another
//! withdraws it.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, LazyLock};

use duckdb::ffi;
use parking_lot::RwLock;

/// The SQL name of the membership test.
pub const MATCHING: &str = "ff_matching";
/// The SQL name of the visitor number lookup.
pub const VISITOR_NO: &str = "ff_visitor_no";

/// Ids per chunk: a chunk is a bitmap of 2^16 ids (8 KB) and its members' numbers.
const CHUNK_BITS: u32 = 16;
const CHUNK_WORDS: usize = (1 << CHUNK_BITS) / 64;

/// The visits of 2^16 consecutive session ids that are in the map.
#[derive(Debug)]
struct Chunk {
    bits: [u64; CHUNK_WORDS],
    /// Members before each word: the index in `numbers` of the word's first member.
    rank: [u32; CHUNK_WORDS],
    /// Visitor numbers of the members, in session id order.
    numbers: Vec<u32>,
}

impl Chunk {
    #[inline]
    fn contains(&self, low: usize) -> bool {
        self.bits[low / 64] & (1 << (low % 64)) != 0
    }

    #[inline]
    fn get(&self, low: usize) -> Option<u32> {
        let (word, bit) = (low / 64, low % 64);
        let bits = self.bits[word];
        if bits & (1 << bit) == 0 {
            return None;
        }
        let before = (bits & ((1 << bit) - 1)).count_ones();
        self.numbers
            .get((self.rank[word] + before) as usize)
            .copied()
    }
}

/// Session id -> visitor number for a set of visits.
#[derive(Default, Debug)]
pub struct VisitMap {
    /// (id >> 16, its chunk), sorted by the first.
    chunks: Vec<(u64, Box<Chunk>)>,
}

impl VisitMap {
    /// The map of `(session id, visitor number)` pairs (any order; for a repeated id
    /// the first pair in id order counts).
    pub fn from_pairs(mut pairs: Vec<(u64, u32)>) -> VisitMap {
        pairs.sort_unstable_by_key(|p| p.0);
        pairs.dedup_by_key(|p| p.0);
        let mut chunks: Vec<(u64, Box<Chunk>)> = Vec::new();
        for (id, number) in pairs {
            let high = id >> CHUNK_BITS;
            if chunks.last().is_none_or(|c| c.0 != high) {
                chunks.push((
                    high,
                    Box::new(Chunk {
                        bits: [0; CHUNK_WORDS],
                        rank: [0; CHUNK_WORDS],
                        numbers: Vec::new(),
                    }),
                ));
            }
            if let Some((_, chunk)) = chunks.last_mut() {
                let low = (id & ((1 << CHUNK_BITS) - 1)) as usize;
                chunk.bits[low / 64] |= 1 << (low % 64);
                chunk.numbers.push(number);
            }
        }
        for (_, chunk) in &mut chunks {
            let mut members = 0;
            for (rank, bits) in chunk.rank.iter_mut().zip(chunk.bits.iter()) {
                *rank = members;
                members += bits.count_ones();
            }
            chunk.numbers.shrink_to_fit();
        }
        VisitMap { chunks }
    }

    /// The visitor number of session `id` when it is in the map; `hint` is the chunk the
    /// previous lookup found (ids come in runs from one chunk: `sessions` is in id order,
    /// `events` in time order).
    #[inline]
    fn get(&self, id: u64, hint: &mut usize) -> Option<u32> {
        self.chunk(id, hint).and_then(|(chunk, low)| chunk.get(low))
    }

    /// Whether session `id` is in the map (`get` without reading the number).
    #[inline]
    fn contains(&self, id: u64, hint: &mut usize) -> bool {
        self.chunk(id, hint)
            .is_some_and(|(chunk, low)| chunk.contains(low))
    }

    /// The chunk of session `id` and the id's place in it.
    #[inline]
    fn chunk(&self, id: u64, hint: &mut usize) -> Option<(&Chunk, usize)> {
        let high = id >> CHUNK_BITS;
        let low = (id & ((1 << CHUNK_BITS) - 1)) as usize;
        match self.chunks.get(*hint) {
            Some(c) if c.0 == high => Some((&c.1, low)),
            _ => {
                let i = self.chunks.binary_search_by_key(&high, |c| c.0).ok()?;
                *hint = i;
                Some((&self.chunks[i].1, low))
            }
        }
    }
}

/// The published maps by handle.
static MAPS: LazyLock<RwLock<HashMap<u64, Arc<VisitMap>>>> = LazyLock::new(Default::default);

/// Makes `map` readable by the functions under `handle`, replacing any map of that handle.
pub(crate) fn publish(handle: u64, map: VisitMap) {
    MAPS.write().insert(handle, Arc::new(map));
}

/// Forgets the map of `handle`.
pub(crate) fn withdraw(handle: u64) {
    MAPS.write().remove(&handle);
}

/// Whether a map is published under `handle`.
#[cfg(test)]
pub(crate) fn published(handle: u64) -> bool {
    MAPS.read().contains_key(&handle)
}

/// The body both functions share: `lookup` of each row's session id in the map of the
/// rows' handle, then `write` of the row and its result.
///
/// # Safety
/// DuckDB's arguments to a scalar function declared `(UBIGINT, UBIGINT)`.
unsafe fn each_lookup<T>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    lookup: impl Fn(&VisitMap, u64, &mut usize) -> T,
    mut write: impl FnMut(usize, T),
) {
    // SAFETY: two UBIGINT columns, flattened by DuckDB's C API (NOT NULL: a bound handle
    // and a `session_id` column).
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        if rows == 0 {
            return;
        }
        let handles =
            ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, 0)) as *const u64;
        let ids =
            ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, 1)) as *const u64;
        let Some(map) = MAPS.read().get(&*handles).cloned() else {
            // Unreachable while queries take turns; an error rather than a wrong count.
            let message = c"the load's matching visits were dropped";
            ffi::duckdb_scalar_function_set_error(info, message.as_ptr());
            return;
        };
        let mut hint = 0;
        for row in 0..rows {
            write(row, lookup(&map, *ids.add(row), &mut hint));
        }
    }
}

unsafe extern "C" fn matching(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: a BOOLEAN output of the chunk's size.
    unsafe {
        let out = ffi::duckdb_vector_get_data(output) as *mut bool;
        each_lookup(info, input, VisitMap::contains, |row, member| {
            *out.add(row) = member
        });
    }
}

unsafe extern "C" fn visitor_no(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: a UINTEGER output of the chunk's size, its validity mask made writable.
    unsafe {
        let out = ffi::duckdb_vector_get_data(output) as *mut u32;
        ffi::duckdb_vector_ensure_validity_writable(output);
        let validity = ffi::duckdb_vector_get_validity(output);
        each_lookup(info, input, VisitMap::get, |row, number| match number {
            Some(n) => *out.add(row) = n,
            None => ffi::duckdb_validity_set_row_invalid(validity, row as u64),
        });
    }
}

/// Registers `ff_matching` and `ff_visitor_no` in the database `conn` belongs to.
///
/// # Safety
/// `conn` must be an open connection.
pub unsafe fn register(conn: ffi::duckdb_connection) -> Result<(), String> {
    let functions: [(&str, ffi::DUCKDB_TYPE, ffi::duckdb_scalar_function_t); 2] = [
        (
            MATCHING,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            Some(matching),
        ),
        (
            VISITOR_NO,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER,
            Some(visitor_no),
        ),
    ];
    for (name, returns, body) in functions {
        let c_name = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: `conn` is open (the caller's promise); every object made is destroyed.
        unsafe {
            let mut function = ffi::duckdb_create_scalar_function();
            ffi::duckdb_scalar_function_set_name(function, c_name.as_ptr());
            for _ in 0..2 {
                let mut id_type =
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT);
                ffi::duckdb_scalar_function_add_parameter(function, id_type);
                ffi::duckdb_destroy_logical_type(&mut id_type);
            }
            let mut return_type = ffi::duckdb_create_logical_type(returns);
            ffi::duckdb_scalar_function_set_return_type(function, return_type);
            ffi::duckdb_destroy_logical_type(&mut return_type);
            ffi::duckdb_scalar_function_set_function(function, body);
            let state = ffi::duckdb_register_scalar_function(conn, function);
            ffi::duckdb_destroy_scalar_function(&mut function);
            if state != ffi::duckdb_state_DuckDBSuccess {
                return Err(format!("cannot register the {name} function"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_exactly_the_ids_across_chunks() {
        let pairs: Vec<(u64, u32)> = (0..200_000u64)
            .map(|i| (1_796_556_608_526_457 + i * 3, (i * 7 % 1000) as u32))
            .chain([(5, 1), (1 << 40, 2)])
            .rev()
            .collect();
        let map = VisitMap::from_pairs(pairs.clone());
        let mut hint = 0;
        for &(id, number) in &pairs {
            assert_eq!(map.get(id, &mut hint), Some(number), "{id}");
            assert!(map.contains(id, &mut hint), "{id}");
        }
        for id in [0u64, 4, 6, 1_796_556_608_526_458, (1 << 40) + 1, u64::MAX] {
            assert_eq!(map.get(id, &mut hint), None, "{id}");
            assert!(!map.contains(id, &mut hint), "{id}");
        }
    }
}
