//! `ff_uniq(UINTEGER) -> BIGINT`: the exact number of distinct visitor numbers (dense
//! per-site numbers, `sessions.visitor_no`, migration 7), registered in DuckDB as an
//! aggregate function through its C API.
//!
//! Why: DuckDB's `count(DISTINCT visitor_id)` keeps every (group, visitor) pair in one
//! hash table, ~120 ns per input row at 10M events, most of the dashboard's time. Sets of
//! the 64-bit ids per group (as ClickHouse's `uniq`, sampled above 100,000) still missed
//! the caches on every insert with ~2M (page, visitor) pairs. Dense numbers let a large
//! group count in a bitmap of (the site's visitors / 8) bytes, one bit set per row, exact
//! at any size, and a small one in a sorted list of 32-bit numbers (BENCHMARKS, fifteenth
//! and sixteenth sessions).
#![allow(unsafe_code)]

use duckdb::ffi;

/// The SQL name of the aggregate.
pub const NAME: &str = "ff_uniq";

/// Distinct dense numbers (a site's visitor numbers), exact at any size: a list of the
/// numbers counted while it is shorter than the bitmap over `0..=max` is large, that
/// bitmap after. The list takes numbers as they come, repeats too (an append stays in the
/// caches where a hash set of the numbers missed them on most inserts), and its distinct
/// numbers are counted only when the count is asked (`count_distinct`). Either form takes
/// at most 4 bytes per number counted. Kept sorted and distinct as it grew (a 4,096-number
/// buffer merged into it, dense at half the bitmap), the list cost ~15 % of a 30-day
/// `visit:source` breakdown at 10M events in sorts and merges (BENCHMARKS, twenty-sixth
/// session). A bitmap sets one bit per row, in a block of memory the size of the site's
/// visitor count / 8.
#[derive(Clone, Debug, Default)]
pub struct NumberSet {
    /// Numbers counted while sparse, in any order, with repeats.
    list: Vec<u32>,
    /// The largest number counted while sparse.
    max: u32,
    /// Bit `n % 64` of word `n / 64` is set when `n` was counted; empty while sparse.
    bits: Vec<u64>,
}

impl NumberSet {
    /// Counts `n`.
    #[inline]
    pub fn insert(&mut self, n: u32) {
        if self.bits.is_empty() {
            self.list.push(n);
            self.max = self.max.max(n);
            // As many bytes in the list as in the bitmap.
            if self.list.len() >= 128 + (self.max as usize >> 5) {
                self.make_dense();
            }
        } else {
            self.set_bit(n);
        }
    }

    #[inline]
    fn set_bit(&mut self, n: u32) {
        let word = (n >> 6) as usize;
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1u64 << (n & 63);
    }

    fn make_dense(&mut self) {
        self.bits = vec![0; (self.max >> 6) as usize + 1];
        for n in std::mem::take(&mut self.list) {
            self.set_bit(n);
        }
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &NumberSet) {
        if other.bits.is_empty() {
            for &n in &other.list {
                self.insert(n);
            }
            return;
        }
        if self.bits.is_empty() {
            self.make_dense();
        }
        if other.bits.len() > self.bits.len() {
            self.bits.resize(other.bits.len(), 0);
        }
        for (word, &theirs) in self.bits.iter_mut().zip(&other.bits) {
            *word |= theirs;
        }
    }

    /// The count (exact).
    pub fn count(&mut self) -> u64 {
        if self.bits.is_empty() {
            count_distinct(&self.list, self.max)
        } else {
            self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
        }
    }

    /// Numbers held (the count, give or take repeats, or the bitmap's size): which of two
    /// sets to merge into the other.
    fn held(&self) -> u64 {
        if self.bits.is_empty() {
            self.list.len() as u64
        } else {
            64 * self.bits.len() as u64
        }
    }
}

/// Largest number whose list is counted in the scratch bitmap (64 MiB of it); a list
/// with a larger one is sorted instead (visitor numbers are dense: a site would need
/// 512M visitors).
const SCRATCH_MAX: u32 = 1 << 29;

/// The distinct numbers of `numbers` (all at most `max`, in any order, with repeats).
/// A long list sets its numbers' bits in a bitmap kept per thread (counting the bits it
/// sets), then clears them: two passes over the list touching a block of max / 8 bytes
/// that stays in the caches, where a radix sort (two passes of 11-bit digits) scattered
/// the list across 2,048 buckets twice: ~6 % of a 30-day page breakdown's samples at
/// 10M events under `perf`, ~200 lists of up to ~31k numbers (BENCHMARKS, twenty-seventh
/// session).
fn count_distinct(numbers: &[u32], max: u32) -> u64 {
    if numbers.len() < 64 || max > SCRATCH_MAX {
        let mut sorted = numbers.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        return sorted.len() as u64;
    }
    thread_local! {
        /// All zero between calls.
        static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|bits| {
        let words = (max >> 6) as usize + 1;
        if bits.len() < words {
            bits.resize(words, 0);
        }
        let mut distinct = 0u64;
        for &n in numbers {
            let (word, bit) = ((n >> 6) as usize, 1u64 << (n & 63));
            if let Some(w) = bits.get_mut(word) {
                distinct += u64::from(*w & bit == 0);
                *w |= bit;
            }
        }
        for &n in numbers {
            if let Some(w) = bits.get_mut((n >> 6) as usize) {
                *w = 0;
            }
        }
        distinct
    })
}

// ---- The DuckDB aggregate -------------------------------------------------------------
//
// Each group's state is one pointer to a boxed `NumberSet`, null until the group sees a
// value (`aggregate.rs`). DuckDB hands `update` a flat input vector and one state pointer
// per row.

unsafe extern "C" fn update(
    _info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) {
    // SAFETY: one UINTEGER column, flattened by DuckDB's C API, and one state per row
    // (a null validity mask: every row valid; else bit `row % 64` of word `row / 64`).
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        let vector = ffi::duckdb_data_chunk_get_vector(input, 0);
        let ids = ffi::duckdb_vector_get_data(vector) as *const u32;
        let validity = ffi::duckdb_vector_get_validity(vector) as *const u64;
        let valid =
            |row: usize| validity.is_null() || *validity.add(row / 64) >> (row % 64) & 1 == 1;
        for row in 0..rows {
            if valid(row) {
                crate::aggregate::value_of::<NumberSet>(*states.add(row)).insert(*ids.add(row));
            }
        }
    }
}

unsafe extern "C" fn combine(
    _info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    target: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    // SAFETY: DuckDB's arguments. The smaller of two sets is merged into the larger: a
    // query holds each number once instead of twice (a copy measured ~10 MiB higher peaks
    // over the 10M dashboard, `scripts/dashboard-concurrent`).
    unsafe {
        crate::aggregate::combine_moving::<NumberSet>(source, target, count, |a, b| {
            let (mut big, small) = if b.held() > a.held() { (b, a) } else { (a, b) };
            big.merge(&small);
            big
        })
    }
}

unsafe extern "C" fn finalize(
    _info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    result: ffi::duckdb_vector,
    count: ffi::idx_t,
    offset: ffi::idx_t,
) {
    // SAFETY: DuckDB's arguments, a BIGINT result.
    unsafe {
        crate::aggregate::finalize_counts::<NumberSet>(source, result, count, offset, |set| {
            set.map_or(0, NumberSet::count)
        })
    }
}

/// Registers `ff_uniq` in the database `conn` belongs to.
///
/// # Safety
/// `conn` must be an open connection.
pub unsafe fn register(conn: ffi::duckdb_connection) -> Result<(), String> {
    let callbacks = crate::aggregate::Callbacks {
        update: Some(update),
        combine: Some(combine),
        finalize: Some(finalize),
        destroy: Some(crate::aggregate::destroy::<NumberSet>),
    };
    // SAFETY: `conn` is open (the caller's promise); the callbacks keep boxed states.
    unsafe {
        crate::aggregate::register(
            conn,
            NAME,
            &[ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER],
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
            callbacks,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_count_as_a_hash_set_does() {
        let mut x = 7u64;
        for (len, max) in [
            (5_000usize, u32::MAX),
            (40_000, 1_500_000),
            (4_096, 1_500_000),
            (600, 2047),
            (100, 9),
            (10, 1_000_000),
        ] {
            let numbers: Vec<u32> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 32) as u32) % max.saturating_add(1).max(1)
                })
                .collect();
            let top = numbers.iter().copied().max().unwrap_or(0);
            let want = numbers
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len() as u64;
            assert_eq!(
                count_distinct(&numbers, top),
                want,
                "{len} numbers up to {max}"
            );
            // The scratch bitmap is left clear: the same list counts the same again.
            assert_eq!(count_distinct(&numbers, top), want, "{len} numbers, again");
        }
    }

    #[test]
    fn numbers_count_exactly_sparse_dense_and_merged() {
        let (mut a, mut b, mut both) = (
            NumberSet::default(),
            NumberSet::default(),
            NumberSet::default(),
        );
        let mut x = 1u64;
        let mut truth = std::collections::HashSet::new();
        for i in 0..400_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (x >> 44) as u32; // 0..2^20
            if i % 3 == 0 {
                a.insert(n)
            } else {
                b.insert(n)
            }
            both.insert(n);
            truth.insert(n);
        }
        assert!(!both.bits.is_empty(), "dense by now");
        assert_eq!(both.count(), truth.len() as u64);
        let mut sparse = NumberSet::default();
        for n in [5u32, 1_000_000, 5, 77] {
            sparse.insert(n);
        }
        assert!(sparse.bits.is_empty());
        assert_eq!(sparse.count(), 3);
        sparse.insert(77);
        sparse.insert(6);
        assert_eq!(sparse.count(), 4, "counted again after more numbers");
        let dense_a = a.count();
        a.merge(&b);
        assert_eq!(a.count(), truth.len() as u64);
        // Sparse into dense, dense into sparse.
        let mut d = NumberSet::default();
        d.merge(&both);
        d.merge(&sparse);
        let extra = u64::from(!truth.contains(&5))
            + u64::from(!truth.contains(&77))
            + u64::from(!truth.contains(&1_000_000));
        assert_eq!(d.count(), truth.len() as u64 + extra);
        assert!(dense_a < truth.len() as u64);
        // Sparse sets over many merges of their buffers, with repeats, merged sparse.
        let (mut odd, mut thirds) = (NumberSet::default(), NumberSet::default());
        for i in 0..30_000u32 {
            odd.insert(2_000_000 - (i * 2 + 1) % 20_000);
            thirds.insert(2_000_000 - (i * 3) % 30_000);
        }
        assert!(odd.bits.is_empty() && thirds.bits.is_empty());
        let want = (1_970_001..=2_000_000u32)
            .filter(|n| {
                (2_000_000 - n) % 2 == 1 && 2_000_000 - n < 20_000 || (2_000_000 - n) % 3 == 0
            })
            .count() as u64;
        odd.merge(&thirds);
        assert!(odd.bits.is_empty(), "still sparse");
        assert_eq!(odd.count(), want);
    }
}
