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

/// An aggregate state: the handle and the rows of one thread (or of merged threads).
#[derive(Default)]
struct Collected {
    handle: u64,
    rows: Vec<Row>,
}

/// Rows collected by finished statements, by handle, until taken.
static COLLECTED: LazyLock<Mutex<HashMap<u64, Vec<Row>>>> = LazyLock::new(Default::default);

/// The rows collected under `handle` (empty if none), forgetting them.
pub(crate) fn take(handle: u64) -> Vec<Row> {
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
                    rows: Vec::new(),
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
        crate::aggregate::combine_moving::<Collected>(source, target, count, |mut into, from| {
            into.rows.extend_from_slice(&from.rows);
            into
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
    // SAFETY: DuckDB's arguments, a BIGINT result; each state's rows move to `COLLECTED`.
    unsafe {
        crate::aggregate::finalize_counts::<Collected>(source, result, count, offset, |c| {
            let Some(collected) = c else { return 0 };
            let rows = std::mem::take(&mut collected.rows);
            let n = rows.len() as u64;
            COLLECTED
                .lock()
                .entry(collected.handle)
                .or_default()
                .extend(rows);
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
