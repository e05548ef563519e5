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
/// caches where a hash set of the numbers missed them on most inserts), and is sorted
/// and de-duplicated only when the count is asked. Either form takes at most 4 bytes per
/// number counted. Kept sorted and distinct as it grew (a 4,096-number buffer merged into
/// it, dense at half the bitmap), the list cost ~15 % of a 30-day `visit:source` breakdown
/// at 10M events in sorts and merges (BENCHMARKS, twenty-sixth session). A bitmap sets
/// one bit per row, in a block of memory the size of the site's visitor count / 8.
#[derive(Clone, Debug, Default)]
pub struct NumberSet {
    /// Numbers counted while sparse, in any order, with repeats (sorted and distinct
    /// after `count`).
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
            sort_numbers(&mut self.list, self.max);
            self.list.dedup();
            self.list.len() as u64
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

/// Sorts `numbers` (all at most `max`): a least-significant-digit radix sort in 11-bit
/// digits, as many as `max` has (two for up to 4M visitors), for a long list; the
/// comparison sort for a short one. A 4,096-number sort was ~11 % of the 10M page
/// breakdown under `perf` with the comparison sort.
fn sort_numbers(numbers: &mut Vec<u32>, max: u32) {
    const DIGIT: u32 = 11;
    if numbers.len() < 512 {
        numbers.sort_unstable();
        return;
    }
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        scratch.resize(numbers.len(), 0);
        let bits = u32::BITS - max.leading_zeros();
        let mut shift = 0;
        while shift < bits {
            let mut starts = [0u32; 1 << DIGIT];
            for &n in numbers.iter() {
                starts[((n >> shift) & ((1 << DIGIT) - 1)) as usize] += 1;
            }
            let mut at = 0;
            for start in starts.iter_mut() {
                let count = *start;
                *start = at;
                at += count;
            }
            for &n in numbers.iter() {
                let digit = ((n >> shift) & ((1 << DIGIT) - 1)) as usize;
                if let Some(slot) = scratch.get_mut(starts[digit] as usize) {
                    *slot = n;
                }
                starts[digit] += 1;
            }
            std::mem::swap(numbers, scratch);
            shift += DIGIT;
        }
    });
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
    fn numbers_sort_as_the_comparison_sort_does() {
        let mut x = 7u64;
        for (len, max) in [
            (5_000usize, u32::MAX),
            (4_096, 1_500_000),
            (600, 2047),
            (100, 9),
        ] {
            let mut numbers: Vec<u32> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 32) as u32) % max.saturating_add(1).max(1)
                })
                .collect();
            let numbers = if max == u32::MAX {
                numbers
                    .iter_mut()
                    .for_each(|n| *n = n.wrapping_mul(2_654_435_761));
                numbers
            } else {
                numbers
            };
            let mut want = numbers.clone();
            want.sort_unstable();
            let top = numbers.iter().copied().max().unwrap_or(0);
            let mut got = numbers;
            sort_numbers(&mut got, top);
            assert_eq!(got, want, "{len} numbers up to {max}");
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
