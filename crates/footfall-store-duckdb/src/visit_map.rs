//! A dashboard load's shared matching visits (`matching.rs`) as an in-memory map from
//! session id to visitor number, read by scalar functions:
//!
//! - `ff_matching(UBIGINT map, UBIGINT session_id) -> BOOLEAN`: whether the visit is one
//!   of them with a matching hit in range;
//! - `ff_visitor_no(UBIGINT map, UBIGINT session_id) -> UINTEGER`: the visitor's number
//!   of such a visit, NULL for any other;
//! - `ff_matching_from_start(UBIGINT map, UBIGINT session_id) -> BOOLEAN`: whether the
//!   visit is one of them at all (a matching hit at or after the range start: visits
//!   starting in range count with a match after its end);
//! - `ff_matching_hits(UBIGINT map)`, `ff_matching_pageviews(UBIGINT map) -> BIGINT`: the
//!   matching hits in range of its visits and the page views among them;
//! - `ff_matching_visitors(UBIGINT map) -> BIGINT`: the distinct visitor numbers of its
//!   visits with a matching hit in range (the filtered aggregate's visitors, counted once
//!   from the map instead of by `ff_uniq` over a scan of the range's visits).
//!
//! Why: with an event filter (`page=/`), each `visit:*` breakdown of a load picked its
//! visits by joining the load's ~350k matching session ids to `sessions`, the timeseries
//! and the page breakdown joined their matching events to those visits for the visitor,
//! and the aggregate joined them for the visit metrics: DuckDB hashed ~350k visits and
//! probed each visit or event of the range every time. Session ids are consecutive
//! within a server run (`IdSequence`), so the map is two bitmaps per 2^16 ids with the
//! visitor numbers of the members beside them (~1.5 MB for ~350k visits), and those
//! queries become a filter or a lookup on their scan (docs/ARCHITECTURE.md, "Matching
//! visits").
//!
//! The maps live in a process-wide registry under a handle that is unique per store and
//! set (`MatchingSets::handle`); a map is published when its set is made and withdrawn
//! when its set is dropped. Queries take turns, so no query reads a map while another
//! withdraws it.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use duckdb::ffi;
use parking_lot::RwLock;

/// The SQL name of the test for a matching hit in range.
pub const MATCHING: &str = "ff_matching";
/// The SQL name of the visitor number lookup.
pub const VISITOR_NO: &str = "ff_visitor_no";
/// The SQL name of the membership test that takes matches after the range end too.
pub const MATCHING_FROM_START: &str = "ff_matching_from_start";
/// The SQL names of the map's matching hits in range and page views among them.
pub const HITS: &str = "ff_matching_hits";
pub const PAGEVIEWS: &str = "ff_matching_pageviews";
/// The SQL name of the map's visitors with a matching hit in range.
pub const VISITORS: &str = "ff_matching_visitors";

/// Ids per chunk: a chunk is a bitmap of 2^16 ids (8 KB) and its members' numbers.
const CHUNK_BITS: u32 = 16;
const CHUNK_WORDS: usize = (1 << CHUNK_BITS) / 64;

/// One visit of a map: session id, visitor number, whether it has a matching hit in range.
pub type Visit = (u64, u32, bool);

/// The visits of 2^16 consecutive session ids that are in the map.
#[derive(Debug)]
struct Chunk {
    members: [u64; CHUNK_WORDS],
    /// The members with a matching hit in range.
    in_range: [u64; CHUNK_WORDS],
    /// Members before each word: the index in `numbers` of the word's first member.
    rank: [u32; CHUNK_WORDS],
    /// Visitor numbers of the members, in session id order.
    numbers: Vec<u32>,
}

impl Chunk {
    #[inline]
    fn contains(&self, low: usize) -> bool {
        self.members[low / 64] & (1 << (low % 64)) != 0
    }

    #[inline]
    fn in_range(&self, low: usize) -> bool {
        self.in_range[low / 64] & (1 << (low % 64)) != 0
    }

    /// The index in `numbers` of member `low`.
    #[inline]
    fn index(&self, low: usize) -> usize {
        let (word, bit) = (low / 64, low % 64);
        (self.rank[word] + (self.members[word] & ((1 << bit) - 1)).count_ones()) as usize
    }

    #[inline]
    fn number_in_range(&self, low: usize) -> Option<u32> {
        if !self.in_range(low) {
            return None;
        }
        self.numbers.get(self.index(low)).copied()
    }
}

/// Session id -> visitor number for a set of visits.
#[derive(Default, Debug)]
pub struct VisitMap {
    /// (id >> 16, its chunk), sorted by the first.
    chunks: Vec<(u64, Box<Chunk>)>,
    /// The visits by id instead (number, hit in range), when their ids are too scattered
    /// for chunks of ~20 KB to pay (a store whose first session ids were random, before
    /// the id sequence): empty otherwise.
    scattered: HashMap<u64, (u32, bool)>,
    /// The matching hits in range of the map's visits, and the page views among them
    /// (`with_hits`).
    hits: u64,
    pageviews: u64,
    /// `visitors()`, counted on first use (only the aggregate asks).
    visitors: std::sync::OnceLock<u64>,
}

/// Members a chunk needs on average for the map to use chunks: a chunk costs ~20 KB, a
/// scattered visit ~24 bytes.
const MEMBERS_PER_CHUNK: usize = 1024;

/// The place of session `id` in its chunk.
fn low(id: u64) -> usize {
    (id & ((1 << CHUNK_BITS) - 1)) as usize
}

impl VisitMap {
    /// The map of `visits` (any order; a visit given more than once is in range when any
    /// of its entries is, with any entry's number: `ff_collect_visits` gives one entry
    /// per matching hit, number 0).
    pub fn from_visits(visits: impl IntoIterator<Item = Visit, IntoIter: Clone>) -> VisitMap {
        let visits = visits.into_iter();
        // The chunks, found in one pass: the ids come in long runs of one chunk.
        let mut highs: Vec<u64> = Vec::new();
        let mut count = 0;
        for (id, _, _) in visits.clone() {
            count += 1;
            if highs.last() != Some(&(id >> CHUNK_BITS)) {
                highs.push(id >> CHUNK_BITS);
            }
        }
        highs.sort_unstable();
        highs.dedup();
        if highs.len() > 16 && highs.len() * MEMBERS_PER_CHUNK > count {
            let mut scattered: HashMap<u64, (u32, bool)> = HashMap::new();
            for (id, number, in_range) in visits {
                let visit = scattered.entry(id).or_insert((number, false));
                visit.1 |= in_range;
            }
            return VisitMap {
                scattered,
                ..VisitMap::default()
            };
        }
        let chunks = highs
            .into_iter()
            .map(|high| {
                let chunk = Box::new(Chunk {
                    members: [0; CHUNK_WORDS],
                    in_range: [0; CHUNK_WORDS],
                    rank: [0; CHUNK_WORDS],
                    numbers: Vec::new(),
                });
                (high, chunk)
            })
            .collect();
        let mut map = VisitMap {
            chunks,
            ..VisitMap::default()
        };
        let mut hint = 0;
        for (id, _, in_range) in visits.clone() {
            if let Some(chunk) = map.chunk_mut(id, &mut hint) {
                let low = low(id);
                chunk.members[low / 64] |= 1 << (low % 64);
                if in_range {
                    chunk.in_range[low / 64] |= 1 << (low % 64);
                }
            }
        }
        // Each number goes at its member's rank, so the visits need no sorting.
        for (_, chunk) in &mut map.chunks {
            let mut members = 0;
            for (rank, bits) in chunk.rank.iter_mut().zip(chunk.members.iter()) {
                *rank = members;
                members += bits.count_ones();
            }
            chunk.numbers = vec![0; members as usize];
        }
        for (id, number, _) in visits {
            if let Some(chunk) = map.chunk_mut(id, &mut hint) {
                let index = chunk.index(low(id));
                if let Some(slot) = chunk.numbers.get_mut(index) {
                    *slot = number;
                }
            }
        }
        map
    }

    /// The distinct visitor numbers of the visits with a matching hit in range.
    pub fn visitors(&self) -> u64 {
        *self.visitors.get_or_init(|| {
            let mut numbers = crate::uniq::NumberSet::default();
            for &(number, in_range) in self.scattered.values() {
                if in_range {
                    numbers.insert(number);
                }
            }
            for (_, chunk) in &self.chunks {
                for (word, (&members, &in_range)) in
                    chunk.members.iter().zip(&chunk.in_range).enumerate()
                {
                    let mut bits = in_range & members;
                    while bits != 0 {
                        let low = word * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        if let Some(&n) = chunk.numbers.get(chunk.index(low)) {
                            numbers.insert(n);
                        }
                    }
                }
            }
            numbers.count()
        })
    }

    /// Counts the hits in range among `rows` (`ff_collect_visits`'s) whose visit is in
    /// the map, and the page views among them: what `ff_matching_hits` and
    /// `ff_matching_pageviews` answer.
    pub fn with_hits<'a>(
        mut self,
        rows: impl IntoIterator<Item = &'a crate::visit_collect::Row>,
    ) -> VisitMap {
        let mut hint = 0;
        for &(id, _, in_range, pageview) in rows {
            if in_range && self.contains(id, &mut hint) {
                self.hits += 1;
                self.pageviews += u64::from(pageview);
            }
        }
        self
    }

    /// The visitor number of session `id` when it is in the map with a matching hit in
    /// range; `hint` is the chunk the previous lookup found (ids come in runs from one
    /// chunk: `sessions` is in id order, `events` in time order).
    #[inline]
    fn number_in_range(&self, id: u64, hint: &mut usize) -> Option<u32> {
        if !self.scattered.is_empty() {
            return self.scattered.get(&id).and_then(|&(n, r)| r.then_some(n));
        }
        self.chunk(id, hint)
            .and_then(|chunk| chunk.number_in_range(low(id)))
    }

    /// Whether session `id` is in the map with a matching hit in range.
    #[inline]
    fn in_range(&self, id: u64, hint: &mut usize) -> bool {
        if !self.scattered.is_empty() {
            return self.scattered.get(&id).is_some_and(|&(_, r)| r);
        }
        self.chunk(id, hint)
            .is_some_and(|chunk| chunk.in_range(low(id)))
    }

    /// Whether session `id` is in the map.
    #[inline]
    fn contains(&self, id: u64, hint: &mut usize) -> bool {
        if !self.scattered.is_empty() {
            return self.scattered.contains_key(&id);
        }
        self.chunk(id, hint)
            .is_some_and(|chunk| chunk.contains(low(id)))
    }

    /// The chunk of session `id`.
    #[inline]
    fn chunk(&self, id: u64, hint: &mut usize) -> Option<&Chunk> {
        let i = self.chunk_index(id, hint)?;
        Some(&self.chunks[i].1)
    }

    fn chunk_mut(&mut self, id: u64, hint: &mut usize) -> Option<&mut Chunk> {
        let i = self.chunk_index(id, hint)?;
        Some(&mut self.chunks[i].1)
    }

    /// The index in `chunks` of the chunk of session `id`, tried at `hint` first and
    /// left there.
    #[inline]
    fn chunk_index(&self, id: u64, hint: &mut usize) -> Option<usize> {
        let high = id >> CHUNK_BITS;
        match self.chunks.get(*hint) {
            Some(c) if c.0 == high => Some(*hint),
            _ => {
                *hint = self.chunks.binary_search_by_key(&high, |c| c.0).ok()?;
                Some(*hint)
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

/// The map of the handle in the first column of a chunk of rows, and their number;
/// `None` for no rows, or (an error set) for a handle without a map.
///
/// # Safety
/// DuckDB's arguments to a scalar function whose first parameter is a UBIGINT handle.
unsafe fn map_of_chunk(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
) -> Option<(Arc<VisitMap>, usize)> {
    // SAFETY: the caller's; the handle column is flattened and NOT NULL (bound).
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        if rows == 0 {
            return None;
        }
        let handles =
            ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, 0)) as *const u64;
        let map = MAPS.read().get(&*handles).cloned();
        if map.is_none() {
            // Unreachable while queries take turns; an error rather than a wrong count.
            let message = c"the load's matching visits were dropped";
            ffi::duckdb_scalar_function_set_error(info, message.as_ptr());
        }
        map.map(|map| (map, rows))
    }
}

/// The body of the per-visit functions: `lookup` of each row's session id in the map of the
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
        let Some((map, rows)) = map_of_chunk(info, input) else {
            return;
        };
        let ids =
            ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, 1)) as *const u64;
        let mut hint = 0;
        for row in 0..rows {
            write(row, lookup(&map, *ids.add(row), &mut hint));
        }
    }
}

/// A BOOLEAN function of the map.
///
/// # Safety
/// As `each_lookup`, with a BOOLEAN output of the chunk's size.
unsafe fn each_test(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
    test: impl Fn(&VisitMap, u64, &mut usize) -> bool,
) {
    // SAFETY: the caller's.
    unsafe {
        let out = ffi::duckdb_vector_get_data(output) as *mut bool;
        each_lookup(info, input, test, |row, passes| *out.add(row) = passes);
    }
}

unsafe extern "C" fn matching(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: DuckDB's arguments to `ff_matching`.
    unsafe { each_test(info, input, output, VisitMap::in_range) }
}

unsafe extern "C" fn matching_from_start(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: DuckDB's arguments to `ff_matching_from_start`.
    unsafe { each_test(info, input, output, VisitMap::contains) }
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
        each_lookup(
            info,
            input,
            VisitMap::number_in_range,
            |row, number| match number {
                Some(n) => *out.add(row) = n,
                None => ffi::duckdb_validity_set_row_invalid(validity, row as u64),
            },
        );
    }
}

/// A BIGINT function of the map alone: `total` of the map of the chunk's handle, on
/// every row.
///
/// # Safety
/// DuckDB's arguments to a scalar function declared `(UBIGINT) -> BIGINT`.
unsafe fn each_total(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
    total: impl Fn(&VisitMap) -> u64,
) {
    // SAFETY: one UBIGINT column (a bound handle), a BIGINT output of the chunk's size.
    unsafe {
        let Some((map, rows)) = map_of_chunk(info, input) else {
            return;
        };
        let out = ffi::duckdb_vector_get_data(output) as *mut i64;
        let n = i64::try_from(total(&map)).unwrap_or(i64::MAX);
        for row in 0..rows {
            *out.add(row) = n;
        }
    }
}

unsafe extern "C" fn matching_hits(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: DuckDB's arguments to `ff_matching_hits`.
    unsafe { each_total(info, input, output, |map| map.hits) }
}

unsafe extern "C" fn matching_visitors(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: DuckDB's arguments to `ff_matching_visitors`.
    unsafe { each_total(info, input, output, VisitMap::visitors) }
}

unsafe extern "C" fn matching_pageviews(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: DuckDB's arguments to `ff_matching_pageviews`.
    unsafe { each_total(info, input, output, |map| map.pageviews) }
}

/// Registers the map's functions in the database `conn` belongs to.
///
/// # Safety
/// `conn` must be an open connection.
pub unsafe fn register(conn: ffi::duckdb_connection) -> Result<(), String> {
    // (name, parameters: the handle, then a session id or nothing; result; body)
    let functions: [(&str, usize, ffi::DUCKDB_TYPE, ffi::duckdb_scalar_function_t); 6] = [
        (
            MATCHING,
            2,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            Some(matching),
        ),
        (
            MATCHING_FROM_START,
            2,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            Some(matching_from_start),
        ),
        (
            VISITOR_NO,
            2,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER,
            Some(visitor_no),
        ),
        (
            HITS,
            1,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
            Some(matching_hits),
        ),
        (
            PAGEVIEWS,
            1,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
            Some(matching_pageviews),
        ),
        (
            VISITORS,
            1,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
            Some(matching_visitors),
        ),
    ];
    const ID: ffi::DUCKDB_TYPE = ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT;
    for (name, parameters, returns, body) in functions {
        // SAFETY: `conn` is open (the caller's promise); the bodies read and write the
        // types declared with them.
        unsafe {
            crate::database::register_scalar(conn, name, &[ID; 2][..parameters], returns, body)?
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_hits_in_range_of_its_visits() {
        let map = VisitMap::from_visits([(10, 1, true), (11, 2, false)]);
        let hits = [
            (10, 1, true, true),
            (10, 1, true, false),
            (10, 1, false, true),
            (11, 2, false, true),
            (12, 3, true, true),
        ];
        let map = map.with_hits(&hits);
        assert_eq!((map.hits, map.pageviews), (2, 1));
    }

    #[test]
    fn maps_scattered_ids_without_a_chunk_each() {
        let mut x = 3u64;
        let visits: Vec<Visit> = (0..5_000u32)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x, i, i % 3 != 0)
            })
            .collect();
        let map = VisitMap::from_visits(visits.iter().copied());
        assert!(map.chunks.is_empty(), "{} chunks", map.chunks.len());
        let mut hint = 0;
        for &(id, number, in_range) in &visits {
            assert!(map.contains(id, &mut hint));
            assert_eq!(map.in_range(id, &mut hint), in_range);
            assert_eq!(
                map.number_in_range(id, &mut hint),
                in_range.then_some(number)
            );
        }
        assert!(!map.contains(1, &mut hint));
        let in_range: std::collections::HashSet<u32> =
            visits.iter().filter(|v| v.2).map(|v| v.1).collect();
        assert_eq!(map.visitors(), in_range.len() as u64);
    }

    #[test]
    fn maps_exactly_the_visits_across_chunks() {
        let visits: Vec<Visit> = (0..200_000u64)
            .map(|i| {
                (
                    1_796_556_608_526_457 + i * 3,
                    (i * 7 % 1000) as u32,
                    i % 5 != 0,
                )
            })
            .chain([(5, 1, true), (1 << 40, 2, false)])
            .rev()
            .collect();
        let mut twice = visits.clone();
        twice.extend_from_slice(&visits[..1000]);
        let map = VisitMap::from_visits(twice);
        assert!(
            map.scattered.is_empty() && !map.chunks.is_empty(),
            "in chunks"
        );
        let mut hint = 0;
        for &(id, number, in_range) in &visits {
            assert!(map.contains(id, &mut hint), "{id}");
            assert_eq!(map.in_range(id, &mut hint), in_range, "{id}");
            let want = in_range.then_some(number);
            assert_eq!(map.number_in_range(id, &mut hint), want, "{id}");
        }
        // Visitors: the distinct numbers of the visits in range (several visits share one).
        let in_range: std::collections::HashSet<u32> =
            visits.iter().filter(|v| v.2).map(|v| v.1).collect();
        assert_eq!(map.visitors(), in_range.len() as u64);
        for id in [0u64, 4, 6, 1_796_556_608_526_458, (1 << 40) + 1, u64::MAX] {
            assert!(!map.contains(id, &mut hint), "{id}");
            assert!(!map.in_range(id, &mut hint), "{id}");
            assert_eq!(map.number_in_range(id, &mut hint), None, "{id}");
        }
    }
}
