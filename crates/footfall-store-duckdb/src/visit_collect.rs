//! `ff_collect_visits(UBIGINT handle, UBIGINT session_id, UINTEGER visitor_no, BOOLEAN
//! in_range, BOOLEAN pageview_in_range) -> BIGINT`: collects the session ids (and the
//! visitor number, whether the row is in range, and a page view in range) of the rows it
//! aggregates under `handle`, for Rust to take with [`take`] after the statement: how a
//! dashboard load's matching visits are found (`query::matching_visit_map`,
//! `visit_map.rs`).
//!
//! Why: the visits of the range's matching events were found with `GROUP BY session_id`
//! into a table: DuckDB's hash aggregate of ~533k events into ~350k visits and the
//! table's materialisation, ~60-75 ms of the `page=/` aggregate at 10M events. Appending
//! each row's id to a per-thread list is a few ns; `VisitMap::from_visits` then sets
//! their bits, which needs no grouping. Returns the rows collected.
//!
//! The lists are blocks of `BLOCK_ROWS` rows ([`Rows`]), never grown by copying: a
//! growing `Vec` per thread, merged into one and copied again for the map, touched ~35 MB
//! of fresh memory for ~540k rows (~9 MB), and each fresh page is a page fault (~11k per
//! `page=/` set at 10M events, `perf record -e page-faults`: 80 % of the server's), and
//! a dropped list's blocks are kept for the next (`SPARE_BLOCKS`): mimalloc returns freed
//! memory to the system after 10 ms (`footfall::memory`), so each load's set faulted its
//! ~9 MB in afresh.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::LazyLock;

use duckdb::ffi;
use parking_lot::Mutex;

/// The SQL name of the aggregate.
pub const NAME: &str = "ff_collect_visits";

/// One collected row: session id, visitor number, whether it is in range, whether it is
/// a page view in range.
pub type Row = (u64, u32, bool, bool);

/// Rows per block of [`Rows`] (256 KiB).
const BLOCK_ROWS: usize = 16 * 1024;

/// Empty blocks kept for reuse at most: 16 MiB, room for the `page=/` set at 10M events
/// (~540k rows, 33 blocks).
const SPARE_BLOCKS: usize = 64;

/// Blocks of dropped [`Rows`], empty, for the next lists.
static SPARE: Mutex<Vec<Vec<Row>>> = Mutex::new(Vec::new());

/// Collected rows in blocks of `BLOCK_ROWS`: appended to and moved without copying.
#[derive(Default)]
pub struct Rows {
    blocks: Vec<Vec<Row>>,
}

impl Drop for Rows {
    fn drop(&mut self) {
        let mut spare = SPARE.lock();
        let room = SPARE_BLOCKS.saturating_sub(spare.len());
        spare.extend(self.blocks.drain(..).take(room).map(|mut block| {
            block.clear();
            block
        }));
    }
}

impl Rows {
    fn push(&mut self, row: Row) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < BLOCK_ROWS => block.push(row),
            _ => {
                let mut block = SPARE
                    .lock()
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(BLOCK_ROWS));
                block.push(row);
                self.blocks.push(block);
            }
        }
    }

    /// Takes `other`'s blocks (their rows are not moved).
    fn append(&mut self, other: &mut Rows) {
        self.blocks.append(&mut other.blocks);
    }

    pub fn len(&self) -> usize {
        self.blocks.iter().map(Vec::len).sum()
    }

    /// The rows, block by block.
    pub fn iter(&self) -> impl Iterator<Item = &Row> + Clone {
        self.blocks.iter().flatten()
    }
}

impl FromIterator<Row> for Rows {
    fn from_iter<I: IntoIterator<Item = Row>>(rows: I) -> Rows {
        let mut collected = Rows::default();
        for row in rows {
            collected.push(row);
        }
        collected
    }
}

/// An aggregate state: the handle and the rows of one thread (or of merged threads).
#[derive(Default)]
struct Collected {
    handle: u64,
    rows: Rows,
}

/// Rows collected by finished statements, by handle, until taken.
static COLLECTED: LazyLock<Mutex<HashMap<u64, Rows>>> = LazyLock::new(Default::default);

/// The rows collected under `handle` (empty if none), forgetting them.
pub(crate) fn take(handle: u64) -> Rows {
    COLLECTED.lock().remove(&handle).unwrap_or_default()
}

type State = crate::aggregate::State<Collected>;

unsafe extern "C" fn update(
    _info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) {
    // SAFETY: UBIGINT, UBIGINT, UINTEGER, BOOLEAN and BOOLEAN columns flattened by
    // DuckDB's C API (NOT NULL: a bound handle, `events.session_id`, `events.visitor_no`
    // and comparisons of `events.ts` and `events.kind`), one state per row, initialised
    // by `state_init`.
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        let column = |i| ffi::duckdb_vector_get_data(ffi::duckdb_data_chunk_get_vector(input, i));
        let handles = column(0) as *const u64;
        let ids = column(1) as *const u64;
        let numbers = column(2) as *const u32;
        let in_range = column(3) as *const bool;
        let pageview = column(4) as *const bool;
        for row in 0..rows {
            let slot = *states.add(row) as *mut State;
            if (*slot).is_null() {
                *slot = Box::into_raw(Box::new(Collected {
                    handle: *handles.add(row),
                    rows: Rows::default(),
                }));
            }
            (**slot).rows.push((
                *ids.add(row),
                *numbers.add(row),
                *in_range.add(row),
                *pageview.add(row),
            ));
        }
    }
}

unsafe extern "C" fn combine(
    _info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    target: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    // SAFETY: DuckDB's arguments; a source's rows are appended to its target's.
    unsafe {
        crate::aggregate::combine_moving::<Collected>(
            source,
            target,
            count,
            |mut into, mut from| {
                into.rows.append(&mut from.rows);
                into
            },
        )
    }
}

unsafe extern "C" fn finalize(
    _info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    result: ffi::duckdb_vector,
    count: ffi::idx_t,
    offset: ffi::idx_t,
) {
    // SAFETY: DuckDB's arguments, a BIGINT result; each state's rows move to `COLLECTED`.
    unsafe {
        crate::aggregate::finalize_counts::<Collected>(source, result, count, offset, |c| {
            let Some(collected) = c else { return 0 };
            let n = collected.rows.len() as u64;
            COLLECTED
                .lock()
                .entry(collected.handle)
                .or_default()
                .append(&mut collected.rows);
            n
        })
    }
}

/// Registers `ff_collect_visits` in the database `conn` belongs to.
///
/// # Safety
/// `conn` must be an open connection.
pub unsafe fn register(conn: ffi::duckdb_connection) -> Result<(), String> {
    let callbacks = crate::aggregate::Callbacks {
        update: Some(update),
        combine: Some(combine),
        finalize: Some(finalize),
        destroy: Some(crate::aggregate::destroy::<Collected>),
    };
    // SAFETY: `conn` is open (the caller's promise); the callbacks keep boxed states.
    unsafe {
        crate::aggregate::register(
            conn,
            NAME,
            &[
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT,
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT,
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER,
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            ],
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
            callbacks,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_order_across_blocks_and_reuse_dropped_blocks() {
        let row = |i: usize| {
            (
                i as u64,
                (i % 7) as u32,
                i.is_multiple_of(2),
                i.is_multiple_of(3),
            )
        };
        let mut first: Rows = (0..BLOCK_ROWS + 10).map(row).collect();
        let mut second: Rows = (BLOCK_ROWS + 10..3 * BLOCK_ROWS).map(row).collect();
        first.append(&mut second);
        assert_eq!(first.blocks.len(), 4, "no block was copied into another");
        assert_eq!(first.len(), 3 * BLOCK_ROWS);
        assert!(first.iter().copied().eq((0..3 * BLOCK_ROWS).map(row)));
        drop(first);
        // Blocks come back empty, with their room (other tests may take some meanwhile).
        let spare = SPARE.lock();
        assert!(
            spare
                .iter()
                .all(|b| b.is_empty() && b.capacity() >= BLOCK_ROWS)
        );
        assert!(spare.len() <= SPARE_BLOCKS);
    }
}
