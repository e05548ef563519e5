//! Scalar functions on the store's millisecond times, registered in DuckDB through its C
//! API:
//!
//! - `ff_ms(TIMESTAMP_MS) -> BIGINT`: milliseconds since the Unix epoch (durations and
//!   time on page are differences of these);
//! - `ff_day(TIMESTAMP_MS, INTEGER offset) -> DATE`: the calendar day of the time shifted
//!   by `offset` seconds (a site's UTC offset at that time);
//! - `ff_same_day(TIMESTAMP_MS, INTEGER, TIMESTAMP_MS, INTEGER) -> BOOLEAN`: whether two
//!   times, each with its offset, fall on the same local day.
//!
//! Why: DuckDB's own conversions check each value (`epoch_us`, a cast to `TIMESTAMP` or
//! `DATE`) and cost 6-10 ns a row: the 30-day aggregate at 10M events spent ~25 of its ~55
//! ms converting ~886k visits' first and last times for the visit duration, and the
//! timeseries ~15 converting times to days (BENCHMARKS, twenty-sixth session). A
//! `TIMESTAMP_MS` is already the millisecond count, so these are a copy and a division.
#![allow(unsafe_code)]

use duckdb::ffi;

/// The SQL name of the millisecond count.
pub const MS: &str = "ff_ms";
/// The SQL name of the local calendar day.
pub const DAY: &str = "ff_day";
/// The SQL name of "two times fall on one local day" (`ff_day(a, off_a) = ff_day(b,
/// off_b)` in one call: the daily timeseries asks it of every visit of the range twice).
pub const SAME_DAY: &str = "ff_same_day";

const MS_PER_DAY: i64 = 86_400_000;

/// Days since the epoch of the time `ms` shifted by `offset_s` seconds: `ff_day`'s day and
/// `ff_same_day`'s comparison.
fn local_day(ms: i64, offset_s: i32) -> i64 {
    ms.saturating_add(i64::from(offset_s) * 1000)
        .div_euclid(MS_PER_DAY)
}

/// Marks invalid in `output` the rows invalid in `input` (NULL in, NULL out).
///
/// # Safety
/// `input` and `output` are vectors of at least `rows` rows.
unsafe fn copy_nulls(input: ffi::duckdb_vector, output: ffi::duckdb_vector, rows: usize) {
    // SAFETY: the caller's.
    unsafe {
        let validity = ffi::duckdb_vector_get_validity(input);
        if validity.is_null() {
            return;
        }
        ffi::duckdb_vector_ensure_validity_writable(output);
        let out = ffi::duckdb_vector_get_validity(output);
        for row in 0..rows as ffi::idx_t {
            if !ffi::duckdb_validity_row_is_valid(validity, row) {
                ffi::duckdb_validity_set_row_invalid(out, row);
            }
        }
    }
}

/// Column `i` of a flattened chunk of `rows` rows as values of `T` (its physical type),
/// with its vector for `copy_nulls`.
///
/// # Safety
/// Column `i` exists, is flat, and holds `T`s.
unsafe fn column<'a, T>(
    input: ffi::duckdb_data_chunk,
    i: ffi::idx_t,
    rows: usize,
) -> (&'a [T], ffi::duckdb_vector) {
    // SAFETY: the caller's.
    unsafe {
        let vector = ffi::duckdb_data_chunk_get_vector(input, i);
        let data = ffi::duckdb_vector_get_data(vector) as *const T;
        (std::slice::from_raw_parts(data, rows), vector)
    }
}

unsafe extern "C" fn ms(
    _info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: one TIMESTAMP_MS column (an i64 per row), flattened by DuckDB's C API, and
    // a BIGINT output of the chunk's size.
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        let (times, vector) = column::<i64>(input, 0, rows);
        let to =
            std::slice::from_raw_parts_mut(ffi::duckdb_vector_get_data(output) as *mut i64, rows);
        to.copy_from_slice(times);
        copy_nulls(vector, output, rows);
    }
}

unsafe extern "C" fn day(
    _info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: a TIMESTAMP_MS and an INTEGER column, flattened by DuckDB's C API, and a
    // DATE output (days since the epoch, an i32 per row) of the chunk's size.
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        let (times, time_vector) = column::<i64>(input, 0, rows);
        let (offsets, offset_vector) = column::<i32>(input, 1, rows);
        let to =
            std::slice::from_raw_parts_mut(ffi::duckdb_vector_get_data(output) as *mut i32, rows);
        for ((to, &ms), &off) in to.iter_mut().zip(times).zip(offsets) {
            *to = i32::try_from(local_day(ms, off)).unwrap_or(i32::MAX);
        }
        copy_nulls(time_vector, output, rows);
        copy_nulls(offset_vector, output, rows);
    }
}

unsafe extern "C" fn same_day(
    _info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    // SAFETY: TIMESTAMP_MS, INTEGER, TIMESTAMP_MS, INTEGER columns, flattened by DuckDB's
    // C API, and a BOOLEAN output (a byte per row) of the chunk's size.
    unsafe {
        let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
        let (firsts, first_vector) = column::<i64>(input, 0, rows);
        let (first_offsets, first_offset_vector) = column::<i32>(input, 1, rows);
        let (lasts, last_vector) = column::<i64>(input, 2, rows);
        let (last_offsets, last_offset_vector) = column::<i32>(input, 3, rows);
        let to =
            std::slice::from_raw_parts_mut(ffi::duckdb_vector_get_data(output) as *mut bool, rows);
        for (row, to) in to.iter_mut().enumerate() {
            *to = local_day(firsts[row], first_offsets[row])
                == local_day(lasts[row], last_offsets[row]);
        }
        for vector in [
            first_vector,
            first_offset_vector,
            last_vector,
            last_offset_vector,
        ] {
            copy_nulls(vector, output, rows);
        }
    }
}

/// Registers `ff_ms`, `ff_day` and `ff_same_day` in the database `conn` belongs to.
///
/// # Safety
/// `conn` must be an open connection.
pub unsafe fn register(conn: ffi::duckdb_connection) -> Result<(), String> {
    use ffi::{
        DUCKDB_TYPE_DUCKDB_TYPE_BIGINT as BIGINT, DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN as BOOLEAN,
        DUCKDB_TYPE_DUCKDB_TYPE_DATE as DATE, DUCKDB_TYPE_DUCKDB_TYPE_INTEGER as INTEGER,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_MS as TIMESTAMP_MS,
    };
    type Body = ffi::duckdb_scalar_function_t;
    let functions: [(&str, &[ffi::DUCKDB_TYPE], ffi::DUCKDB_TYPE, Body); 3] = [
        (MS, &[TIMESTAMP_MS], BIGINT, Some(ms)),
        (DAY, &[TIMESTAMP_MS, INTEGER], DATE, Some(day)),
        (
            SAME_DAY,
            &[TIMESTAMP_MS, INTEGER, TIMESTAMP_MS, INTEGER],
            BOOLEAN,
            Some(same_day),
        ),
    ];
    for (name, parameters, returns, body) in functions {
        // SAFETY: `conn` is open (the caller's promise); the bodies read and write the
        // types declared with them.
        unsafe { crate::database::register_scalar(conn, name, parameters, returns, body)? };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::database::Database;

    /// `ff_ms` and `ff_day` agree with DuckDB's own `epoch_ms` and cast to `DATE` on times
    /// before and after the epoch, across midnight in both directions of an offset, through
    /// a `CASE` of offsets, and keep NULLs (the last page view's `lead` in time on page).
    #[test]
    fn millisecond_counts_and_local_days_match_duckdbs_own() {
        let db = Database::open(None, &[]).expect("duckdb");
        let conn = db.connect().expect("connection");
        let mismatches: i64 = conn
            .query_row(
                "WITH t AS (SELECT CAST(make_timestamp(us) AS TIMESTAMP_MS) AS ts, off \
                 FROM (SELECT (i - 1500) * 86400000000 // 7 + (i % 13) * 3599999 AS us, \
                 [0, -18000, 19800, 50400, -43200][i % 5 + 1] AS off FROM range(3000) t(i))) \
                 SELECT count(*) FILTER (WHERE ff_ms(ts) <> epoch_ms(ts) \
                 OR ff_day(ts, off) <> CAST(ts + to_seconds(off) AS DATE) \
                 OR ff_day(ts, CASE WHEN ts < TIMESTAMP_MS '1970-06-01' THEN off ELSE 3600 END) \
                 <> CAST(ts + to_seconds(CASE WHEN ts < TIMESTAMP_MS '1970-06-01' THEN off ELSE 3600 END) AS DATE) \
                 OR ff_same_day(ts, off, ts2, 3600) <> (ff_day(ts, off) = ff_day(ts2, 3600))) \
                 FROM (SELECT *, CAST(ts + to_minutes(CAST(epoch_ms(ts) % 1000 AS BIGINT)) AS TIMESTAMP_MS) AS ts2 FROM t)",
                [],
                |r| r.get(0),
            )
            .expect("compared");
        assert_eq!(mismatches, 0);
        let nulls: (Option<i64>, Option<String>) = conn
            .query_row(
                "SELECT ff_ms(x), CAST(ff_day(x, 0) AS VARCHAR) FROM (SELECT CAST(NULL AS TIMESTAMP_MS) AS x \
                 UNION ALL SELECT TIMESTAMP_MS '2024-01-01') ORDER BY 1 NULLS FIRST LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("nulls");
        assert_eq!(nulls, (None, None));
        let same: (Option<bool>, bool, bool) = conn
            .query_row(
                "SELECT ff_same_day(NULL::TIMESTAMP_MS, 0, TIMESTAMP_MS '2024-01-01', 0), \
                 ff_same_day(TIMESTAMP_MS '2024-03-09 23:50:00', 0, TIMESTAMP_MS '2024-03-10 00:10:00', 0), \
                 ff_same_day(TIMESTAMP_MS '2024-03-09 23:50:00', -3600, TIMESTAMP_MS '2024-03-10 00:10:00', -3600)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("same days");
        assert_eq!(same, (None, false, true));
        let day: String = conn
            .query_row(
                "SELECT CAST(ff_day(TIMESTAMP_MS '2024-03-10 03:30:00', -18000) AS VARCHAR)",
                [],
                |r| r.get(0),
            )
            .expect("a day");
        assert_eq!(day, "2024-03-09");
    }
}
