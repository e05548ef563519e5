//! `EventSink` on DuckDB: batches go in through the Appender inside one transaction that
//! also records the WAL position, so a replay after a crash never stores twice.

use crate::{DuckStore, Inner, db_err, out_of_memory};
use async_trait::async_trait;
use duckdb::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, StringArray, TimestampMillisecondArray, UInt8Array,
    UInt32Array, UInt64Array,
};
use duckdb::arrow::datatypes::{Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{Connection, params};
use footfall_core::event::{ENGAGEMENT, PAGEVIEW, stored_time_us};
use footfall_core::query::{NOT_SET, VisitAttr};
use footfall_core::{Event, VisitAttrs};
use footfall_store::{EventSink, RecentSession, StoreResult};
use std::sync::Arc;

/// Rows handed to DuckDB per Arrow record batch: bounds the column copies held at once
/// (a few MB) while keeping the per-batch overhead negligible.
const ARROW_CHUNK_ROWS: usize = 16_384;

/// A text column as a `CompactString` (the type of event and visit strings).
fn text_column(r: &duckdb::Row, i: usize) -> duckdb::Result<footfall_core::CompactString> {
    r.get::<_, String>(i).map(Into::into)
}

/// One Arrow column from a field of each row (the record-batch builders below).
fn u32s<T>(rows: &[T], f: impl Fn(&T) -> u32) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(rows.iter().map(f)))
}
fn u64s<T>(rows: &[T], f: impl Fn(&T) -> u64) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
}
/// Times given in microseconds, as the millisecond column type of `events` and
/// `sessions` (migration 8).
fn timestamps<T>(rows: &[T], f: impl Fn(&T) -> Option<i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter(
        rows.iter().map(|r| f(r).map(|us| us.div_euclid(1000))),
    ))
}

/// The `events` columns (0004, 0009, 0010) as Arrow arrays, in the table's order: each event
/// with its visit's visitor number (`visitor_numbers`).
fn events_record_batch(rows: &[(&Event, u32)]) -> duckdb::Result<RecordBatch> {
    let strings = |f: fn(&Event) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(e, _)| f(e)),
        ))
    };
    let bools = |f: fn(&Event) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|(e, _)| Some(f(e))),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        u32s(rows, |(e, _)| e.site_id),
        timestamps(rows, |(e, _)| Some(e.ts_us)),
        u64s(rows, |(e, _)| e.event_id),
        bools(|e| e.client_id),
        u64s(rows, |(e, _)| e.session_id),
        strings(|e| &e.name),
        bools(|e| e.interactive),
        strings(|e| &e.hostname),
        strings(|e| &e.pathname),
        strings(|e| &e.title),
        u32s(rows, |(e, _)| e.engagement_ms),
        Arc::new(UInt8Array::from_iter(
            rows.iter().map(|(e, _)| e.scroll_depth),
        )),
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|(e, _)| e.revenue_amount),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|(e, _)| e.revenue_currency.as_deref()),
        )),
        bools(|e| !e.props.is_empty()),
        u32s(rows, |(_, visitor_no)| *visitor_no),
        Arc::new(UInt8Array::from_iter_values(
            rows.iter().map(|(e, _)| crate::event_kind(&e.name)),
        )),
    ];
    record_batch(columns)
}

/// A record batch of a table's `columns`. The appender matches them to the table by
/// position and type (DuckDB appends a data chunk without casts, so each array's type
/// must be the column's exactly); field names are not read, so they are positions here
/// rather than a second copy of the table's column list.
fn record_batch(columns: Vec<ArrayRef>) -> duckdb::Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, col)| Field::new(format!("c{i}"), col.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Appends `rows` to `table` as record batches of [`ARROW_CHUNK_ROWS`] built by `batch`.
fn append_in_record_batches<T>(
    conn: &Connection,
    table: &str,
    rows: &[T],
    batch: impl Fn(&[T]) -> duckdb::Result<RecordBatch>,
) -> duckdb::Result<()> {
    let mut app = conn.appender(table)?;
    for chunk in rows.chunks(ARROW_CHUNK_ROWS) {
        app.append_record_batch(batch(chunk)?)?;
    }
    app.flush()
}

/// A batch's events in (site, session, time, id) order: each visit's events in one run,
/// in the order that decides its exit. The events are appended in it and the visits
/// staged and merged from its runs (sorted once for all three). Times as stored (to the
/// millisecond), so a tie is broken by the id here as in the store's own recomputation.
fn visit_order(events: &[Event]) -> Vec<&Event> {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| (e.site_id, e.session_id, stored_time_us(e.ts_us), e.event_id));
    order
}

/// Each visit's events (a run of `visit_order`).
fn visit_runs<'o, 'e>(order: &'o [&'e Event]) -> impl Iterator<Item = &'o [&'e Event]> {
    order.chunk_by(|a, b| (a.site_id, a.session_id) == (b.site_id, b.session_id))
}

/// Appends a batch clustered by visit: (site, session, time) order keeps a visit's
/// events together on disk, where its session id and visitor number compress to runs and
/// its timestamps to a narrow range (`events` has no visitor id or visit attributes, see
/// 0004). Each event carries its visit's visitor number (`numbers`: one per run of
/// `order`, `visitor_numbers`), so event queries that need only the visitor (a page
/// breakdown) count visitors without joining the visits (0009). Columns go in as Arrow
/// record batches (copied into DuckDB's vectors a column at a time) rather than row by
/// row: `append_row` converted and bound each of the 16 values through its own call.
fn append_events(conn: &Connection, order: &[&Event], numbers: &[u32]) -> duckdb::Result<()> {
    let runs: Vec<&[&Event]> = visit_runs(order).collect();
    if runs.len() != numbers.len() {
        return Err(duckdb::Error::InvalidParameterCount(
            numbers.len(),
            runs.len(),
        ));
    }
    let rows: Vec<(&Event, u32)> = runs
        .iter()
        .zip(numbers)
        .flat_map(|(run, &n)| run.iter().map(move |e| (*e, n)))
        .collect();
    append_in_record_batches(conn, "events", &rows, events_record_batch)?;
    let props: Vec<Prop<'_>> = order
        .iter()
        .flat_map(|e| {
            e.props
                .iter()
                .map(move |(k, v)| (e.site_id, e.event_id, k.as_str(), v.as_str()))
        })
        .collect();
    if !props.is_empty() {
        append_in_record_batches(conn, "event_props", &props, props_record_batch)?;
    }
    Ok(())
}

/// One custom property: site, event id, key, value (a row of `event_props`).
type Prop<'a> = (u32, u64, &'a str, &'a str);

/// The `event_props` columns as Arrow arrays, in the table's order.
fn props_record_batch(rows: &[Prop<'_>]) -> duckdb::Result<RecordBatch> {
    record_batch(vec![
        u32s(rows, |p| p.0),
        u64s(rows, |p| p.1),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|p| p.2))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|p| p.3))),
    ])
}

/// The visit attribute columns, in the order of `sessions` and `touched_sessions`.
pub(crate) const VISIT_COLUMNS: &str = "entry_page, entry_hostname, referrer, source, channel, \
utm_source, utm_medium, utm_campaign, utm_content, utm_term, device, browser, browser_version, \
os, os_version, country, region, city, country_name, region_name, city_name, org, label";

/// Per writer connection: the visits a write touched, with their visitor and visit
/// attributes (which `events` does not store), for the rollup refresh.
pub(crate) const TOUCHED_SESSIONS_DDL: &str = "CREATE TEMP TABLE touched_sessions (
    site_id UINTEGER, session_id UBIGINT, visitor_id UBIGINT,
    entry_page VARCHAR, entry_hostname VARCHAR, referrer VARCHAR, source VARCHAR,
    channel VARCHAR, utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR,
    utm_content VARCHAR, utm_term VARCHAR, device VARCHAR, browser VARCHAR,
    browser_version VARCHAR, os VARCHAR, os_version VARCHAR, country VARCHAR,
    region VARCHAR, city UINTEGER, country_name VARCHAR, region_name VARCHAR,
    city_name VARCHAR, org VARCHAR, label VARCHAR, visitor_no UINTEGER)";

/// Recomputes the `sessions` rows of the visits in `touched_sessions`: numbers from
/// their events, attributes from the staged row. A visit without events left (retention)
/// loses its row. `min_id` lets zone maps skip row groups older than the oldest touched
/// visit (ids are sequential, so old row groups hold only smaller ones). The exit
/// tie-break on `event_id` matches the query builder's raw path. The staged visits carry
/// their visitor numbers (`number_staged_visitors`, or staged from `sessions`).
pub(crate) fn refresh_touched_sessions(conn: &Connection, min_id: u64) -> duckdb::Result<()> {
    const PICK: &str =
        "session_id >= ? AND session_id IN (SELECT session_id FROM touched_sessions)";
    conn.execute(
        &format!("DELETE FROM sessions WHERE {PICK}"),
        params![min_id],
    )?;
    conn.execute(
        &format!(
            "INSERT INTO sessions BY NAME
SELECT t.*, a.* EXCLUDE (site_id, session_id)
FROM touched_sessions t JOIN (
    SELECT site_id, session_id, min(ts) AS session_start, max(ts) AS last_ts,
           count(*) FILTER (WHERE name = '{PAGEVIEW}') AS pageviews,
           count(*) FILTER (WHERE name NOT IN ('{PAGEVIEW}', '{ENGAGEMENT}') AND interactive) AS interactive,
           coalesce(arg_max(pathname, (ts, event_id)) FILTER (WHERE name = '{PAGEVIEW}'), arg_max(pathname, (ts, event_id))) AS exit_page,
           coalesce(arg_max(hostname, (ts, event_id)) FILTER (WHERE name = '{PAGEVIEW}'), arg_max(hostname, (ts, event_id))) AS exit_hostname
    FROM events WHERE {PICK}
    GROUP BY site_id, session_id
) a ON a.site_id = t.site_id AND a.session_id = t.session_id"
        ),
        params![min_id],
    )?;
    Ok(())
}

/// Gives each staged visit without a visitor number (`touched_sessions.visitor_no` NULL)
/// its visitor's: the one its own `sessions` row has for the same visitor (a continuing
/// visit), else the one another visit of the visitor has, else the site's next number
/// (`visitor_counters`). `min_id` is the smallest staged id.
///
/// The second step scans every visit's `visitor_id` (~30-50 ms at 10M events, one
/// thread), once per store batch (at most 50,000 events, or a second's worth); the
/// numbers let queries count visitors in bitmaps (`ff_uniq`), the dashboard's largest
/// cost otherwise.
pub(crate) fn number_staged_visitors(conn: &Connection, min_id: u64) -> duckdb::Result<()> {
    conn.execute(
        "UPDATE touched_sessions t SET visitor_no = s.visitor_no FROM sessions s \
         WHERE t.visitor_no IS NULL AND s.session_id >= ? AND s.site_id = t.site_id \
         AND s.session_id = t.session_id AND s.visitor_id = t.visitor_id",
        params![min_id],
    )?;
    let unnumbered: bool = conn.query_row(
        "SELECT count(*) > 0 FROM touched_sessions WHERE visitor_no IS NULL",
        [],
        |r| r.get(0),
    )?;
    if !unnumbered {
        return Ok(());
    }
    conn.execute_batch(
        "UPDATE touched_sessions t SET visitor_no = k.visitor_no FROM (
             SELECT site_id, visitor_id, min(visitor_no) AS visitor_no FROM sessions
             WHERE visitor_id IN (SELECT visitor_id FROM touched_sessions WHERE visitor_no IS NULL)
             GROUP BY site_id, visitor_id) k
         WHERE t.visitor_no IS NULL AND k.site_id = t.site_id AND k.visitor_id = t.visitor_id;
         UPDATE touched_sessions t SET visitor_no = n.visitor_no FROM (
             SELECT d.site_id, d.visitor_id, CAST(coalesce(c.next_no, 0)
                 + row_number() OVER (PARTITION BY d.site_id ORDER BY d.visitor_id) - 1 AS UINTEGER) AS visitor_no
             FROM (SELECT DISTINCT site_id, visitor_id FROM touched_sessions WHERE visitor_no IS NULL) d
             LEFT JOIN visitor_counters c ON c.site_id = d.site_id) n
         WHERE t.visitor_no IS NULL AND n.site_id = t.site_id AND n.visitor_id = t.visitor_id;
         UPDATE visitor_counters c SET next_no = greatest(c.next_no, t.top + 1)
         FROM (SELECT site_id, max(visitor_no) AS top FROM touched_sessions GROUP BY site_id) t
         WHERE t.site_id = c.site_id;
         INSERT INTO visitor_counters SELECT site_id, max(visitor_no) + 1 FROM touched_sessions
         WHERE site_id NOT IN (SELECT site_id FROM visitor_counters) GROUP BY site_id;",
    )
}

/// The staged visits' visitor numbers (after `number_staged_visitors`), in (site, session)
/// order: one per run of the batch's `visit_order`.
fn visitor_numbers(conn: &Connection) -> duckdb::Result<Vec<u32>> {
    let mut stmt =
        conn.prepare("SELECT visitor_no FROM touched_sessions ORDER BY site_id, session_id")?;
    let numbers = stmt.query_map([], |r| r.get::<_, u32>(0))?;
    numbers.collect()
}

/// Gives every stored event its visit's visitor number (`sessions.visitor_no`): the data
/// step of migration 9, which added the column, and of test fixtures that insert events
/// with SQL. The store writer numbers its events as it appends them. Every event, not
/// only those without one: with `events.visitor_no IS NULL` in the condition the UPDATE
/// took 40 s instead of 2 at 10M events (Python `duckdb`, 256 MB).
pub(crate) fn number_stored_events(conn: &Connection) -> duckdb::Result<()> {
    conn.execute(
        "UPDATE events SET visitor_no = s.visitor_no FROM sessions s \
         WHERE s.site_id = events.site_id AND s.session_id = events.session_id",
        [],
    )
    .map(|_| ())
}

/// Sets every stored event's kind from its name (`crate::event_kind`): the data step of
/// migration 10, which added the column, and of test fixtures that insert events with
/// SQL. The store writer appends each event with its kind.
pub(crate) fn classify_stored_events(conn: &Connection) -> duckdb::Result<()> {
    use crate::{KIND_CUSTOM, KIND_ENGAGEMENT, KIND_PAGEVIEW};
    use footfall_core::event::{ENGAGEMENT, PAGEVIEW};
    conn.execute(
        &format!(
            "UPDATE events SET kind = CASE name WHEN '{PAGEVIEW}' THEN {KIND_PAGEVIEW} \
             WHEN '{ENGAGEMENT}' THEN {KIND_ENGAGEMENT} ELSE {KIND_CUSTOM} END"
        ),
        [],
    )
    .map(|_| ())
}

/// Data step of migration 7: numbers the visitors of the stored visits, per site in
/// first-seen order (`number_staged_visitors` numbers the later ones).
pub(crate) fn number_stored_visitors(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(
        "UPDATE sessions s SET visitor_no = n.visitor_no FROM (
             SELECT site_id, visitor_id, CAST(row_number() OVER (PARTITION BY site_id
                 ORDER BY min(session_start), visitor_id) - 1 AS UINTEGER) AS visitor_no
             FROM sessions GROUP BY site_id, visitor_id) n
         WHERE n.site_id = s.site_id AND n.visitor_id = s.visitor_id;
         INSERT INTO visitor_counters SELECT site_id, max(visitor_no) + 1 FROM sessions GROUP BY site_id;",
    )
}

/// `touched_sessions` rows as Arrow columns (`TOUCHED_SESSIONS_DDL`'s order and types):
/// the visit's attributes from the event carrying them, NULL for a visit whose opening
/// event is not in the batch (see `fill_missing_attributes`).
fn staged_visits_record_batch(rows: &[&Event]) -> duckdb::Result<RecordBatch> {
    // Unknown values of the attributes `VisitAttr::unknown_stored_empty` names are stored
    // empty, never as the label "(not set)" (migration 11).
    let attr = |a: VisitAttr, f: fn(&VisitAttrs) -> &str| -> ArrayRef {
        let empty_not_set = a.unknown_stored_empty();
        Arc::new(StringArray::from_iter(rows.iter().map(|e| {
            e.visit.as_deref().map(|v| match f(v) {
                NOT_SET if empty_not_set => "",
                value => value,
            })
        })))
    };
    use VisitAttr as A;
    let columns: Vec<ArrayRef> = vec![
        u32s(rows, |e| e.site_id),
        u64s(rows, |e| e.session_id),
        u64s(rows, |e| e.visitor_id),
        attr(A::EntryPage, |v| &v.entry_page),
        attr(A::EntryPageHostname, |v| &v.entry_hostname),
        attr(A::Referrer, |v| &v.referrer),
        attr(A::Source, |v| &v.source),
        attr(A::Channel, |v| &v.channel),
        attr(A::UtmSource, |v| &v.utm_source),
        attr(A::UtmMedium, |v| &v.utm_medium),
        attr(A::UtmCampaign, |v| &v.utm_campaign),
        attr(A::UtmContent, |v| &v.utm_content),
        attr(A::UtmTerm, |v| &v.utm_term),
        attr(A::Device, |v| &v.device),
        attr(A::Browser, |v| &v.browser),
        attr(A::BrowserVersion, |v| &v.browser_version),
        attr(A::Os, |v| &v.os),
        attr(A::OsVersion, |v| &v.os_version),
        attr(A::Country, |v| &v.country),
        attr(A::Region, |v| &v.region),
        Arc::new(UInt32Array::from_iter(
            rows.iter().map(|e| e.visit.as_deref().map(|v| v.city)),
        )),
        attr(A::CountryName, |v| &v.country_name),
        attr(A::RegionName, |v| &v.region_name),
        attr(A::CityName, |v| &v.city_name),
        attr(A::Org, |v| &v.org),
        attr(A::Label, |v| &v.label),
        // Numbered after staging (`number_staged_visitors`).
        Arc::new(UInt32Array::from(vec![None::<u32>; rows.len()])),
    ];
    record_batch(columns)
}

/// Empties the staging tables (`touched_sessions`, `batch_visits`) in the transaction
/// that filled them, just before it commits, so their rows are never committed. Rows of a
/// temp table that a later transaction deletes are never reclaimed (DuckDB does not
/// checkpoint the temp catalog): emptied at the start of the next batch instead, the
/// staged visits of a 10M-event load stayed allocated, ~235 MiB of DuckDB's buffer pool and
/// temporary file, and every batch scanned them again (BENCHMARKS.md History).
fn clear_staging(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch("DELETE FROM touched_sessions; DELETE FROM batch_visits")
}

/// Fills `touched_sessions` with the distinct visits of a batch; returns the smallest id.
/// A visit's attributes come with its first event only (`Event::visit`); the others are
/// staged with NULL attributes, which `fill_missing_attributes` takes from the visit's
/// `sessions` row where a row is rewritten as a whole.
fn stage_batch(conn: &Connection, order: &[&Event]) -> duckdb::Result<Option<u64>> {
    // Per visit, the event carrying the attributes, or any when none does.
    let firsts: Vec<&Event> = visit_runs(order)
        .map(|run| {
            run.iter()
                .find(|e| e.visit.is_some())
                .copied()
                .unwrap_or(run[0])
        })
        .collect();
    append_in_record_batches(
        conn,
        "touched_sessions",
        &firsts,
        staged_visits_record_batch,
    )?;
    Ok(firsts.iter().map(|e| e.session_id).min())
}

/// Gives the staged visits without attributes (staged NULL by `stage_batch`) those of
/// their `sessions` row, or empty ones when they have none (their first event was
/// erased). `min_id` is the smallest staged id.
fn fill_missing_attributes(conn: &Connection, min_id: u64) -> duckdb::Result<()> {
    let columns: Vec<&str> = VISIT_COLUMNS.split(", ").collect();
    let from_row = columns
        .iter()
        .map(|c| format!("{c} = s.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute(
        &format!(
            "UPDATE touched_sessions t SET {from_row} FROM sessions s \
             WHERE t.entry_page IS NULL AND s.session_id >= ? \
             AND s.site_id = t.site_id AND s.session_id = t.session_id"
        ),
        params![min_id],
    )?;
    // A visit without a row (its first event was erased) gets empty attributes.
    let empty = columns
        .iter()
        .map(|c| format!("{c} = {}", if *c == "city" { "0" } else { "''" }))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute(
        &format!("UPDATE touched_sessions SET {empty} WHERE entry_page IS NULL"),
        [],
    )?;
    Ok(())
}

/// One visit's numbers within one write batch, merged into its `sessions` row.
struct BatchVisit<'a> {
    site_id: u32,
    session_id: u64,
    first_us: i64,
    last_us: i64,
    pageviews: u32,
    interactive: u32,
    /// The batch's exit by page view and by any event: (ts, event id, page, host), the
    /// `arg_max(.., (ts, event_id))` of `refresh_touched_sessions`.
    pageview_exit: Option<(i64, u64, &'a str, &'a str)>,
    any_exit: (i64, u64, &'a str, &'a str),
}

/// Per visit of a batch, in (site, session) order. A run of `visit_order` is in (time, id)
/// order, so its first event is the visit's first and its last ones are the exits.
fn batch_visits<'e>(order: &[&'e Event]) -> Vec<BatchVisit<'e>> {
    let exit = |e: &'e Event| {
        (
            stored_time_us(e.ts_us),
            e.event_id,
            e.pathname.as_str(),
            e.hostname.as_str(),
        )
    };
    visit_runs(order)
        .map(|run| {
            let (first, last) = (run[0], run[run.len() - 1]);
            BatchVisit {
                site_id: first.site_id,
                session_id: first.session_id,
                first_us: stored_time_us(first.ts_us),
                last_us: stored_time_us(last.ts_us),
                pageviews: run.iter().filter(|e| e.name == PAGEVIEW).count() as u32,
                interactive: run
                    .iter()
                    .filter(|e| e.name != PAGEVIEW && e.name != ENGAGEMENT && e.interactive)
                    .count() as u32,
                pageview_exit: run.iter().rfind(|e| e.name == PAGEVIEW).map(|e| exit(e)),
                any_exit: exit(last),
            }
        })
        .collect()
}

/// Per writer connection: the numbers of the visits a batch touched (`BatchVisit`), and
/// whether each has a `sessions` row and can be merged into it.
pub(crate) const BATCH_VISITS_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS batch_visits (
    site_id UINTEGER, session_id UBIGINT, first_ts TIMESTAMP_MS, last_ts TIMESTAMP_MS,
    pageviews UINTEGER, interactive UINTEGER, last_pageview_ts TIMESTAMP_MS,
    pageview_exit_page VARCHAR, pageview_exit_hostname VARCHAR,
    exit_page VARCHAR, exit_hostname VARCHAR, has_row BOOLEAN, mergeable BOOLEAN)";

/// `batch_visits` rows as Arrow columns (`BATCH_VISITS_DDL`'s order and types); `has_row`
/// and `mergeable` start false.
fn batch_visits_record_batch<'a>(rows: &[BatchVisit<'a>]) -> duckdb::Result<RecordBatch> {
    let strings = |f: fn(&BatchVisit<'a>) -> Option<&'a str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    };
    let unset: ArrayRef = Arc::new(BooleanArray::from(vec![false; rows.len()]));
    let columns: Vec<ArrayRef> = vec![
        u32s(rows, |v| v.site_id),
        u64s(rows, |v| v.session_id),
        timestamps(rows, |v| Some(v.first_us)),
        timestamps(rows, |v| Some(v.last_us)),
        u32s(rows, |v| v.pageviews),
        u32s(rows, |v| v.interactive),
        timestamps(rows, |v| v.pageview_exit.map(|x| x.0)),
        strings(|v| v.pageview_exit.map(|x| x.2)),
        strings(|v| v.pageview_exit.map(|x| x.3)),
        strings(|v| Some(v.any_exit.2)),
        strings(|v| Some(v.any_exit.3)),
        unset.clone(),
        unset,
    ];
    record_batch(columns)
}

/// Brings the `sessions` rows of the visits in `touched_sessions` (staged by
/// `stage_batch`) up to date with a batch already appended to `events`.
///
/// Recomputing a visit from `events` scans every event from the oldest touched visit on:
/// under steady traffic some visit is always half an hour old, so each batch rescanned
/// the last half hour of events (the store writer's largest cost). Instead, each visit's
/// numbers within the batch are merged into its row: start and end by min/max, counts
/// added, the exit page taken from the batch when its exit event is later than every
/// event the row covers. A visit without a row is new (a visit has a row exactly when it
/// has events: erase and retention remove or recompute both together) and is inserted
/// from the batch alone. Only when the merge cannot tell the exit page (an exit candidate
/// of the batch not after the row's last event: out-of-order hits) is the visit
/// recomputed from its events as before, so the rollup stays exact.
fn merge_batch_into_rollup(conn: &Connection, order: &[&Event], min_id: u64) -> duckdb::Result<()> {
    append_in_record_batches(
        conn,
        "batch_visits",
        &batch_visits(order),
        batch_visits_record_batch,
    )?;
    // Which visits have a row, and whether the batch's exit is decidable against it:
    // a page view of the batch wins when the row has none or it is after the row's last
    // event; without one, the row's page-view exit stays; with no page views on either
    // side the later event wins (a tie needs the event ids: recompute).
    conn.execute(
        "UPDATE batch_visits b SET has_row = true, mergeable = CASE
             WHEN b.last_pageview_ts IS NOT NULL THEN s.pageviews = 0 OR b.last_pageview_ts > s.last_ts
             WHEN s.pageviews > 0 THEN true
             ELSE b.last_ts <> s.last_ts END
         FROM sessions s
         WHERE s.session_id >= ? AND s.site_id = b.site_id AND s.session_id = b.session_id",
        params![min_id],
    )?;
    // The numbers of every mergeable visit; the attributes only of those whose opening
    // event is in the batch (an earlier hit that became the visit's start): rewriting two
    // dozen unchanged strings per continuing visit was most of the update's cost.
    let numbers = "session_start = least(s.session_start, b.first_ts),
                 last_ts = greatest(s.last_ts, b.last_ts),
                 pageviews = s.pageviews + b.pageviews,
                 interactive = s.interactive + b.interactive,
                 exit_page = CASE WHEN b.last_pageview_ts IS NOT NULL THEN b.pageview_exit_page
                     WHEN s.pageviews > 0 OR s.last_ts > b.last_ts THEN s.exit_page
                     ELSE b.exit_page END,
                 exit_hostname = CASE WHEN b.last_pageview_ts IS NOT NULL THEN b.pageview_exit_hostname
                     WHEN s.pageviews > 0 OR s.last_ts > b.last_ts THEN s.exit_hostname
                     ELSE b.exit_hostname END";
    let attributes = VISIT_COLUMNS
        .split(", ")
        .map(|c| format!("{c} = t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute(
        &format!(
            "UPDATE sessions s SET {numbers}
             FROM batch_visits b, touched_sessions t
             WHERE b.mergeable AND t.entry_page IS NULL
               AND t.site_id = b.site_id AND t.session_id = b.session_id
               AND s.session_id >= ? AND s.site_id = b.site_id AND s.session_id = b.session_id"
        ),
        params![min_id],
    )?;
    conn.execute(
        &format!(
            "UPDATE sessions s SET visitor_id = t.visitor_id, visitor_no = t.visitor_no, {attributes}, {numbers}
             FROM batch_visits b, touched_sessions t
             WHERE b.mergeable AND t.entry_page IS NOT NULL
               AND t.site_id = b.site_id AND t.session_id = b.session_id
               AND s.session_id >= ? AND s.site_id = b.site_id AND s.session_id = b.session_id"
        ),
        params![min_id],
    )?;
    // Left to do: new visits (inserted) and those recomputed from their events.
    conn.execute(
        "DELETE FROM touched_sessions t WHERE EXISTS (SELECT 1 FROM batch_visits b
             WHERE b.site_id = t.site_id AND b.session_id = t.session_id AND b.mergeable)",
        [],
    )?;
    let Some(oldest_left) =
        conn.query_row("SELECT min(session_id) FROM touched_sessions", [], |r| {
            r.get::<_, Option<u64>>(0)
        })?
    else {
        return Ok(());
    };
    fill_missing_attributes(conn, oldest_left)?;
    conn.execute(
        "INSERT INTO sessions BY NAME
         SELECT t.*, b.first_ts AS session_start, b.last_ts AS last_ts,
                b.pageviews AS pageviews, b.interactive AS interactive,
                coalesce(b.pageview_exit_page, b.exit_page) AS exit_page,
                coalesce(b.pageview_exit_hostname, b.exit_hostname) AS exit_hostname
         FROM touched_sessions t JOIN batch_visits b
           ON t.site_id = b.site_id AND t.session_id = b.session_id
         WHERE NOT b.has_row",
        [],
    )?;
    // What is left now is recomputed from its events.
    conn.execute(
        "DELETE FROM touched_sessions t WHERE EXISTS (SELECT 1 FROM batch_visits b
             WHERE b.site_id = t.site_id AND b.session_id = t.session_id AND NOT b.has_row)",
        [],
    )?;
    let oldest_left: Option<u64> =
        conn.query_row("SELECT min(session_id) FROM touched_sessions", [], |r| {
            r.get(0)
        })?;
    match oldest_left {
        Some(min) => refresh_touched_sessions(conn, min),
        None => Ok(()),
    }
}

/// Fills `touched_sessions` from the existing `sessions` rows picked by `cond` (with
/// `params`); returns the smallest id.
fn stage_from_sessions(
    conn: &Connection,
    cond: &str,
    params: &[&dyn duckdb::ToSql],
) -> duckdb::Result<Option<u64>> {
    conn.execute(
        &format!(
            "INSERT INTO touched_sessions SELECT site_id, session_id, visitor_id, {VISIT_COLUMNS}, \
             visitor_no FROM sessions WHERE {cond}"
        ),
        params,
    )?;
    conn.query_row("SELECT min(session_id) FROM touched_sessions", [], |r| {
        r.get(0)
    })
}

/// Session-id cut points splitting `table` into slices of about `per_slice` rows. Ids are
/// sequential per server start with jumps between starts: cut at quantiles, not at equal
/// widths. Approximate cuts are fine; every id falls in exactly one slice.
fn session_id_slices(
    conn: &Connection,
    table: &str,
    per_slice: u64,
) -> duckdb::Result<Vec<String>> {
    let rows: u64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    let slices = rows.div_ceil(per_slice).max(1);
    let mut cuts: Vec<u64> = Vec::new();
    if slices > 1 {
        let qs = (1..slices)
            .map(|i| format!("{}", i as f64 / slices as f64))
            .collect::<Vec<_>>()
            .join(", ");
        let list: String = conn.query_row(
            &format!("SELECT CAST(approx_quantile(session_id, [{qs}]) AS VARCHAR) FROM {table}"),
            [],
            |r| r.get(0),
        )?;
        cuts = list
            .trim_matches(['[', ']'])
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
    }
    let mut conds = Vec::with_capacity(cuts.len() + 1);
    let mut lo: Option<u64> = None;
    for hi in cuts.iter().copied().map(Some).chain([None]) {
        conds.push(match (lo, hi) {
            (None, None) => "true".to_string(),
            (None, Some(h)) => format!("session_id < {h}"),
            (Some(l), Some(h)) => format!("session_id >= {l} AND session_id < {h}"),
            (Some(l), None) => format!("session_id >= {l}"),
        });
        lo = hi;
    }
    Ok(conds)
}

/// Data step of migration 2/3 on the version-3 schema (visit attributes on every
/// event): builds the rollup from the events, in slices of about 200,000 events by
/// session id, so the grouping stays within DuckDB's memory limit on any number of events.
pub(crate) fn rebuild_sessions_v3(conn: &Connection) -> duckdb::Result<()> {
    // ~50k visits per slice: the grouping state of 37 columns per visit, strings
    // included, has to fit in the 256 MB default memory limit (1M events did not).
    conn.execute("DELETE FROM sessions", [])?;
    for cond in session_id_slices(conn, "events", 200_000)? {
        conn.execute(
            &format!(
                "INSERT INTO sessions
SELECT site_id, session_id,
       any_value(visitor_id), min(session_start), min(ts), max(ts),
       coalesce(max(ts) FILTER (WHERE name <> 'engagement'), min(ts)),
       count(*) FILTER (WHERE name = 'pageview'),
       count(*) FILTER (WHERE name <> 'engagement'),
       count(*) FILTER (WHERE name NOT IN ('pageview', 'engagement') AND interactive),
       any_value(entry_page), any_value(entry_hostname),
       coalesce(arg_max(pathname, (ts, event_id)) FILTER (WHERE name = 'pageview'), arg_max(pathname, (ts, event_id))),
       coalesce(arg_max(hostname, (ts, event_id)) FILTER (WHERE name = 'pageview'), arg_max(hostname, (ts, event_id))),
       any_value(referrer), any_value(source), any_value(channel),
       any_value(utm_source), any_value(utm_medium), any_value(utm_campaign),
       any_value(utm_content), any_value(utm_term),
       any_value(device), any_value(browser), any_value(browser_version),
       any_value(os), any_value(os_version),
       any_value(country), any_value(region), any_value(city),
       any_value(country_name), any_value(region_name), any_value(city_name), any_value(org),
       any_value(label)
FROM events WHERE {cond}
GROUP BY site_id, session_id"
            ),
            [],
        )?;
    }
    Ok(())
}

/// Data step of migration 4: copies the events (without visit attributes, clustered by
/// visit) and the rollup rows into the version-4 tables, in slices of about 500,000
/// events by session id (each slice is sorted within DuckDB's memory limit), then swaps
/// the tables. Progress is logged per slice.
pub(crate) fn migrate_to_v4(conn: &Connection) -> duckdb::Result<()> {
    let slices = session_id_slices(conn, "events", 500_000)?;
    let started = std::time::Instant::now();
    for (i, cond) in slices.iter().enumerate() {
        conn.execute(
            &format!(
                "INSERT INTO events_v4 SELECT site_id, ts, event_id, client_id, session_id, name, interactive, hostname, pathname, title, engagement_ms, \
                 scroll_depth, revenue_amount, revenue_currency, has_props FROM events \
                 WHERE {cond} ORDER BY site_id, session_id, ts, event_id"
            ),
            [],
        )?;
        conn.execute(
            &format!(
                "INSERT INTO sessions_v4 SELECT site_id, session_id, visitor_id, \
                 first_ts, last_ts, pageviews, interactive, entry_page, entry_hostname, \
                 exit_page, exit_hostname, referrer, source, channel, utm_source, utm_medium, \
                 utm_campaign, utm_content, utm_term, device, browser, browser_version, os, \
                 os_version, country, region, city, country_name, region_name, city_name, org, \
                 coalesce(label, '') FROM sessions WHERE {cond} ORDER BY site_id, session_id"
            ),
            [],
        )?;
        tracing::info!(
            slice = i + 1,
            slices = slices.len(),
            secs = started.elapsed().as_secs(),
            "migration 4: events and visits copied"
        );
    }
    conn.execute_batch(
        "DROP TABLE events; ALTER TABLE events_v4 RENAME TO events;
         DROP TABLE sessions; ALTER TABLE sessions_v4 RENAME TO sessions;",
    )
}

impl Inner {
    /// Stores a batch and its log position in one transaction, under DuckDB's write
    /// limit when the batch is part of a backlog (`Inner::lower_for_backlog`).
    fn append_with_lsn(&self, events: &[Event], lsn: u64) -> StoreResult<()> {
        let _backlog = self.lower_for_backlog(events.len());
        self.append_or_retry(events, lsn)
    }

    /// A batch that runs out of DuckDB memory is stored once more with the query limit
    /// (if it ran under the write limit), then with a raised limit, and if even that is
    /// too little (a limit set far below what a batch needs), with more again: retried
    /// at the same limit it would fail forever, and the log would grow behind it.
    fn append_or_retry(&self, events: &[Event], lsn: u64) -> StoreResult<()> {
        let first = self.append_on(&self.writer.lock(), events, lsn);
        match first {
            Err(e) if out_of_memory(&e) => {
                // In a query turn, like every change of DuckDB's limit; turn before
                // writer, the order `release_idle_memory` takes them in.
                let _turn = self.query_turns.lock();
                let conn = self.writer.lock();
                let append = || self.append_on(&conn, events, lsn);
                if let Some(done) = self.again_with_query_limit("a store batch", append) {
                    return done;
                }
                match self.with_more_memory(&conn, "a store batch", append) {
                    Err(e) if out_of_memory(&e) => {
                        self.with_most_memory(&conn, "a store batch", append)
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    pub(crate) fn append_on(
        &self,
        conn: &Connection,
        events: &[Event],
        lsn: u64,
    ) -> StoreResult<()> {
        let _one_thread = OneDuckThread::hold(self, conn)?;
        conn.execute_batch("BEGIN TRANSACTION").map_err(db_err)?;
        let order = visit_order(events);
        // The visits are staged and numbered first: each event is stored with its
        // visitor number.
        let result = stage_batch(conn, &order)
            .and_then(|min| match min {
                Some(min) => number_staged_visitors(conn, min)
                    .and_then(|()| visitor_numbers(conn))
                    .and_then(|numbers| append_events(conn, &order, &numbers))
                    .and_then(|()| merge_batch_into_rollup(conn, &order, min)),
                None => Ok(()),
            })
            .and_then(|()| {
                conn.execute(
                    "INSERT OR REPLACE INTO wal_checkpoint VALUES (0, ?)",
                    params![lsn],
                )
                .map(|_| ())
            })
            .and_then(|()| clear_staging(conn));
        match result {
            Ok(()) => {
                let committed = conn.execute_batch("COMMIT").map_err(db_err);
                self.note_append(events);
                committed
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db_err(e))
            }
        }
    }

    /// Runs `f` in one transaction on the writer connection.
    fn write_tx<R>(&self, f: impl FnOnce(&Connection) -> duckdb::Result<R>) -> StoreResult<R> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN TRANSACTION").map_err(db_err)?;
        match f(&conn).and_then(|r| clear_staging(&conn).map(|()| r)) {
            Ok(r) => {
                let committed = conn.execute_batch("COMMIT").map_err(db_err);
                self.note_rewrite();
                committed.map(|()| r)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db_err(e))
            }
        }
    }
}

/// Holds DuckDB to one thread while a store batch is written; the configured count is
/// restored when dropped. DuckDB is instance-wide about threads, and the thread that runs
/// a statement does not wait for its tasks: while DuckDB's other thread works on the only
/// task a pipeline has (most of a batch's statements are small merges and inserts), the
/// caller polls for another in a loop. That loop was most of the store writer's
/// instructions under load, and with one thread the caller runs the tasks itself: a bulk
/// load was stored sooner on less CPU (BENCHMARKS.md History). Stats API queries running
/// meanwhile have one thread too; a batch takes a few milliseconds under live traffic.
/// The count is raised back from a thread of normal priority (`Inner::set_duck_threads`),
/// so the worker DuckDB then launches is not niced as the writer is.
struct OneDuckThread<'c> {
    inner: &'c Inner,
    conn: &'c Connection,
    restore: Option<u32>,
}

impl<'c> OneDuckThread<'c> {
    fn hold(inner: &'c Inner, conn: &'c Connection) -> StoreResult<Self> {
        let restore = (inner.threads > 1).then_some(inner.threads);
        if restore.is_some() {
            conn.execute_batch("SET threads = 1").map_err(db_err)?;
        }
        Ok(OneDuckThread {
            inner,
            conn,
            restore,
        })
    }
}

impl Drop for OneDuckThread<'_> {
    fn drop(&mut self) {
        if let Some(threads) = self.restore
            && let Err(e) = self.inner.set_duck_threads(self.conn, threads)
        {
            tracing::error!(error = %e, threads, "could not restore DuckDB's thread count");
        }
    }
}

/// Visits active in the last `window` seconds before each site's newest event, from the
/// rollup (start-up reads these to continue visits across a restart).
const RECENT_SESSIONS_SQL: &str = "
WITH newest AS (SELECT site_id, max(last_ts) AS mx FROM sessions GROUP BY site_id)
SELECT s.site_id, s.visitor_id, s.session_id, epoch_us(s.session_start), epoch_us(s.last_ts),
    s.exit_page
FROM sessions s JOIN newest n ON s.site_id = n.site_id
WHERE s.last_ts >= n.mx - to_seconds(?::BIGINT)";

/// The latest visit of each visitor active since the parameter (`live_visits`).
const LIVE_VISITS_SQL: &str = concat!(
    "
SELECT site_id, visitor_id, epoch_us(session_start), epoch_us(last_ts), pageviews, exit_page,
    exit_hostname, entry_page, entry_hostname, referrer, source, channel, utm_source,
    utm_medium, utm_campaign, utm_content, utm_term, device, browser, browser_version, os,
    os_version, country, region, city, country_name, region_name, city_name, org, label
FROM sessions WHERE last_ts >= ",
    ts_param!(),
    "
QUALIFY row_number() OVER (PARTITION BY site_id, visitor_id ORDER BY last_ts DESC) = 1"
);

#[async_trait]
impl EventSink for DuckStore {
    async fn append(&self, events: std::sync::Arc<Vec<Event>>, lsn: u64) -> StoreResult<()> {
        self.on_writer_thread(move |inner| inner.append_with_lsn(&events, lsn))
            .await
    }

    /// Checkpoints what a backlog left uncheckpointed (`checkpoint_after_backlog`: else
    /// the first query after a load did, and until then the WAL and DuckDB's temporary
    /// file held the load's last row groups, ~9 bytes per event at 10M), then empties
    /// DuckDB's buffer pool, which a load leaves holding the blocks it wrote (~90 MiB
    /// after 3M events): a dashboard query reads what it needs back. The low limit is
    /// DuckDB-wide for a moment, so this takes a query turn (`Inner::query_turn`).
    async fn release_idle_memory(&self) {
        let released = self
            .blocking(|inner| {
                // Not a query: the limit stays as it is (`release_cached_buffers`).
                let _turn = inner.query_turns.lock();
                inner.checkpoint_after_backlog();
                let conn = inner.writer.lock();
                inner.release_cached_buffers(&conn);
                Ok(())
            })
            .await;
        // `release_cached_buffers` logs its own failures; this is the task's.
        if let Err(e) = released {
            tracing::debug!(error = %e, "the task releasing DuckDB's cached buffers failed");
        }
    }

    async fn checkpoint(&self) -> StoreResult<u64> {
        self.blocking(|inner| {
            let conn = inner.writer.lock();
            let lsn: Option<u64> = conn
                .query_row("SELECT max(lsn) FROM wal_checkpoint", [], |r| r.get(0))
                .map_err(db_err)?;
            Ok(lsn.unwrap_or(0))
        })
        .await
    }

    async fn client_event_ids(&self, mut each: footfall_store::EachIdChunk) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner.with_reader(|conn| {
                // Column batches, not rows: start-up reads every client id (10M rows: ~3 s
                // row by row). Streamed: `query_arrow` has DuckDB materialise the whole
                // result first (80 MB at 10M ids, beside the scanned blocks).
                // With the ids of erased events: re-sent, they stay refused.
                let mut stmt = conn
                    .prepare(
                        "SELECT event_id FROM events WHERE client_id \
                         UNION ALL SELECT event_id FROM erased_event_ids",
                    )
                    .map_err(db_err)?;
                for batch in stmt.stream_arrow([]).map_err(db_err)? {
                    let column = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<duckdb::arrow::array::UInt64Array>()
                        .ok_or_else(|| {
                            footfall_store::StoreError::Backend("event_id is not UBIGINT".into())
                        })?;
                    each(column.values());
                }
                Ok(())
            })
        })
        .await
    }

    async fn recent_sessions(&self, window_secs: u32) -> StoreResult<Vec<RecentSession>> {
        self.blocking(move |inner| {
            inner.with_reader(|conn| {
                let mut stmt = conn.prepare(RECENT_SESSIONS_SQL).map_err(db_err)?;
                let rows = stmt
                    .query_map(params![i64::from(window_secs)], |r| {
                        Ok(RecentSession {
                            site_id: r.get(0)?,
                            visitor_id: r.get(1)?,
                            session_id: r.get(2)?,
                            start_us: r.get(3)?,
                            last_us: r.get(4)?,
                            exit_page: r.get(5)?,
                        })
                    })
                    .map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
        })
        .await
    }

    async fn live_visits(&self, since_us: i64) -> StoreResult<Vec<footfall_store::LivePresence>> {
        self.blocking(move |inner| {
            inner.with_reader(|conn| {
                let mut stmt = conn.prepare(LIVE_VISITS_SQL).map_err(db_err)?;
                let rows = stmt
                    .query_map(params![since_us], |r| {
                        Ok(footfall_store::LivePresence {
                            site_id: r.get(0)?,
                            visitor_id: r.get(1)?,
                            first_us: r.get(2)?,
                            last_us: r.get(3)?,
                            pageviews: r.get(4)?,
                            page: text_column(r, 5)?,
                            hostname: text_column(r, 6)?,
                            visit: footfall_core::VisitAttrs {
                                entry_page: text_column(r, 7)?,
                                entry_hostname: text_column(r, 8)?,
                                referrer: text_column(r, 9)?,
                                source: text_column(r, 10)?,
                                channel: text_column(r, 11)?,
                                utm_source: text_column(r, 12)?,
                                utm_medium: text_column(r, 13)?,
                                utm_campaign: text_column(r, 14)?,
                                utm_content: text_column(r, 15)?,
                                utm_term: text_column(r, 16)?,
                                device: text_column(r, 17)?,
                                browser: text_column(r, 18)?,
                                browser_version: text_column(r, 19)?,
                                os: text_column(r, 20)?,
                                os_version: text_column(r, 21)?,
                                country: text_column(r, 22)?,
                                region: text_column(r, 23)?,
                                city: r.get(24)?,
                                country_name: text_column(r, 25)?,
                                region_name: text_column(r, 26)?,
                                city_name: text_column(r, 27)?,
                                org: text_column(r, 28)?,
                                label: text_column(r, 29)?,
                            },
                        })
                    })
                    .map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
        })
        .await
    }

    async fn delete_before(&self, site_id: u32, before_us: i64) -> StoreResult<u64> {
        self.blocking(move |inner| {
            inner.write_tx(|conn| {
                // Visits that straddle the cutoff keep their later events: recompute them
                // (the attributes come from their rollup rows, staged before deleting).
                let straddling = stage_from_sessions(
                    conn,
                    concat!(
                        "site_id = ? AND session_start < ",
                        ts_param!(),
                        " AND last_ts >= ",
                        ts_param!()
                    ),
                    params![site_id, before_us, before_us],
                )?;
                conn.execute(
                    concat!(
                        "DELETE FROM event_props WHERE site_id = ? AND event_id IN \
                         (SELECT event_id FROM events WHERE site_id = ? AND ts < ",
                        ts_param!(),
                        ")"
                    ),
                    params![site_id, site_id, before_us],
                )?;
                let n = conn.execute(
                    concat!(
                        "DELETE FROM events WHERE site_id = ? AND ts < ",
                        ts_param!()
                    ),
                    params![site_id, before_us],
                )?;
                conn.execute(
                    concat!(
                        "DELETE FROM sessions WHERE site_id = ? AND session_start < ",
                        ts_param!()
                    ),
                    params![site_id, before_us],
                )?;
                if let Some(min) = straddling {
                    refresh_touched_sessions(conn, min)?;
                }
                Ok(n as u64)
            })
        })
        .await
    }

    async fn erase_visitor(&self, site_id: u32, visitor_id: u64) -> StoreResult<u64> {
        self.blocking(move |inner| {
            inner.write_tx(|conn| {
                // Events know their visitor through their visit's rollup row: delete
                // that last.
                const VISITS: &str =
                    "session_id IN (SELECT session_id FROM sessions WHERE site_id = ? AND visitor_id = ?)";
                conn.execute(
                    &format!(
                        "DELETE FROM event_props WHERE site_id = ? AND event_id IN \
                         (SELECT event_id FROM events WHERE site_id = ? AND {VISITS})"
                    ),
                    params![site_id, site_id, site_id, visitor_id],
                )?;
                // Their client ids stay known (start-up rebuilds the de-dup set from
                // the store), so a re-sent batch cannot bring the events back.
                conn.execute(
                    &format!(
                        "INSERT INTO erased_event_ids SELECT site_id, event_id FROM events \
                         WHERE site_id = ? AND client_id AND {VISITS}"
                    ),
                    params![site_id, site_id, visitor_id],
                )?;
                let n = conn.execute(
                    &format!("DELETE FROM events WHERE site_id = ? AND {VISITS}"),
                    params![site_id, site_id, visitor_id],
                )?;
                conn.execute(
                    "DELETE FROM sessions WHERE site_id = ? AND visitor_id = ?",
                    params![site_id, visitor_id],
                )?;
                Ok(n as u64)
            })
        })
        .await
    }

    async fn delete_site_events(&self, site_id: u32) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner.write_tx(|conn| {
                for table in ["event_props", "sessions", "events", "erased_event_ids"] {
                    conn.execute(
                        &format!("DELETE FROM {table} WHERE site_id = ?"),
                        params![site_id],
                    )?;
                }
                Ok(())
            })
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use footfall_core::VisitAttrs;
    use footfall_core::query::{Query, SiteContext, parse_query};
    use footfall_store::EventQuery;
    use std::sync::Arc;

    const MIN: i64 = 60_000_000;
    /// 2024-03-10T00:00:00Z in microseconds.
    const DAY: i64 = 1_710_028_800_000_000;

    fn ev(session: u64, visitor: u64, ts_us: i64, name: &str, path: &str, source: &str) -> Event {
        Event {
            site_id: 1,
            ts_us,
            event_id: session * 1000 + (ts_us / MIN) as u64 % 1000,
            visitor_id: visitor,
            session_id: session,
            session_start_us: ts_us,
            name: name.into(),
            pathname: path.into(),
            hostname: "example.com".into(),
            visit: Some(Arc::new(VisitAttrs {
                entry_page: "/".into(),
                source: source.into(),
                ..VisitAttrs::default()
            })),
            ..Event::default()
        }
    }

    /// A later event of a visit: the pipeline sends the attributes with the first only.
    fn later(e: Event) -> Event {
        Event { visit: None, ..e }
    }

    fn site() -> SiteContext {
        SiteContext {
            domain: "example.com".into(),
            timezone: chrono_tz::UTC,
            goals: Vec::new(),
            stats_start: None,
        }
    }

    /// `n` page views from `DAY` on, `step_us` apart: `per_visit` to a visit, two visits
    /// to a visitor, over `pages` paths; visits take their sources in turn from `sources`.
    pub(crate) fn page_views(
        n: u64,
        per_visit: u64,
        step_us: i64,
        pages: u64,
        sources: &[&str],
    ) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let visit = i / per_visit;
                let source = sources[(visit % sources.len() as u64) as usize];
                let path = format!("/p/{}", i % pages);
                let e = ev(
                    visit + 1,
                    visit / 2,
                    DAY + i as i64 * step_us,
                    "pageview",
                    &path,
                    source,
                );
                if i % per_visit == 0 { e } else { later(e) }
            })
            .collect()
    }

    fn query(body: serde_json::Value) -> Query {
        let now = chrono::DateTime::parse_from_rfc3339("2024-03-20T00:00:00Z")
            .expect("now")
            .with_timezone(&chrono::Utc);
        parse_query(&body, &site(), now).expect("valid query")
    }

    /// (session_id, visitor_id, session_start us, last_ts us, pageviews, exit_page, source)
    type Row = (u64, u64, i64, i64, u32, String, String);

    fn sessions(store: &DuckStore) -> Vec<Row> {
        let conn = store.inner.writer.lock();
        let mut stmt = conn
            .prepare(
                "SELECT session_id, visitor_id, epoch_us(session_start), epoch_us(last_ts), \
                 pageviews, exit_page, source FROM sessions ORDER BY session_id",
            )
            .expect("prepare");
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// Every `sessions` row, as text, in (site, session) order.
    fn rollup_text(store: &DuckStore) -> String {
        store
            .inner
            .writer
            .lock()
            .query_row(
                "SELECT string_agg(CAST(s AS VARCHAR), chr(10) ORDER BY site_id, session_id) \
                 FROM sessions s",
                [],
                |r| r.get(0),
            )
            .expect("rollup")
    }

    /// A store in a file under `dir`, with the default configuration.
    fn file_store(dir: &std::path::Path) -> DuckStore {
        DuckStore::open(&dir.join("footfall.duckdb"), &crate::DuckConfig::default()).expect("open")
    }

    /// Bytes in DuckDB's own WAL of `file_store(dir)` (0 when there is none).
    fn duckdb_wal_size(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("footfall.duckdb.wal")).map_or(0, |m| m.len())
    }

    /// A quiet writer checkpoints what the load left uncheckpointed and gives back the
    /// buffer pool it filled (`release_idle_memory`), with the configured limit in force
    /// afterwards and the data all there.
    #[tokio::test]
    async fn idle_release_checkpoints_and_empties_the_buffer_pool_after_a_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(dir.path());
        let events = page_views(200_000, 4, 1_000_000, 500, &["Google"]);
        store.append(Arc::new(events), 1).await.expect("append");
        assert!(
            store.inner.limit_state.lock().checkpoint_due,
            "a backlog batch"
        );
        let wal_size = || duckdb_wal_size(dir.path());
        let loaded_wal = wal_size();
        assert!(
            loaded_wal >= 1 << 20,
            "the load is in DuckDB's WAL: {loaded_wal} bytes"
        );
        let configured = store.setting("memory_limit");
        let (loaded, _) = store.memory_usage().expect("usage");
        store.release_idle_memory().await;
        let (released, _) = store.memory_usage().expect("usage");
        assert!(released <= 16 << 20, "{loaded} -> {released} bytes");
        assert!(released < loaded, "{loaded} -> {released} bytes");
        assert!(
            !store.inner.limit_state.lock().checkpoint_due,
            "checkpointed"
        );
        let wal = wal_size();
        assert!(
            wal < 1 << 20,
            "DuckDB's WAL folded into the file: {wal} bytes"
        );
        assert_eq!(store.setting("memory_limit"), configured);
        assert_eq!(stored_events(&store), 200_000);
    }

    /// Dropping the store closes DuckDB's instance, which folds its WAL into the file: no
    /// thread of the store (the writer's, the thread-count setter's) keeps a connection
    /// open past it, or a clean stop would leave the WAL to replay at the next start.
    #[tokio::test]
    async fn dropping_the_store_checkpoints_duckdbs_wal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(dir.path());
        let events = page_views(2_000, 4, 1_000_000, 50, &["Google"]);
        store.append(Arc::new(events), 1).await.expect("append");
        let wal_size = || duckdb_wal_size(dir.path());
        assert!(wal_size() > 0, "the batch is in DuckDB's WAL");
        drop(store);
        assert_eq!(wal_size(), 0, "DuckDB's WAL folded into the file on close");
        let reopened = file_store(dir.path());
        assert_eq!(stored_events(&reopened), 2_000);
    }

    /// A batch's staged visits are deleted in the batch's own transaction
    /// (`clear_staging`), so nothing of them stays allocated: deleted by the next batch,
    /// they stayed in DuckDB's memory and temporary file for good.
    #[tokio::test]
    async fn staged_visits_leave_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(dir.path());
        for batch in 0..10 {
            let mut events = page_views(20_000, 4, 1_000_000, 500, &["Google"]);
            for e in &mut events {
                e.ts_us += batch * 20_000 * 1_000_000;
                e.session_start_us += batch * 20_000 * 1_000_000;
                e.session_id += batch as u64 * 5_000;
                e.visitor_id += batch as u64 * 5_000;
            }
            store
                .append(Arc::new(events), batch as u64 + 1)
                .await
                .expect("append");
        }
        let conn = store.inner.writer.lock();
        conn.execute_batch("CHECKPOINT").expect("checkpoint");
        let (staged, temp_tables): (u64, u64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM touched_sessions) + (SELECT count(*) FROM batch_visits), \
                 (SELECT sum(memory_usage_bytes + temporary_storage_bytes) FROM duckdb_memory() \
                  WHERE tag = 'IN_MEMORY_TABLE')::UBIGINT",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("staging");
        drop(conn);
        assert_eq!(staged, 0);
        assert!(temp_tables < 1 << 20, "{temp_tables} bytes of temp tables");
        assert_eq!(stored_events(&store), 200_000);
    }

    /// Events in the store.
    pub(crate) fn stored_events(store: &DuckStore) -> u64 {
        store
            .inner
            .with_reader(|conn| {
                conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                    .map_err(db_err)
            })
            .expect("count")
    }

    /// A batch that does not fit DuckDB's memory limit is stored with a raised one (or
    /// the last resort), and the configured limit is in force again after it.
    #[tokio::test]
    async fn a_batch_over_the_memory_limit_is_stored_with_a_raised_one() {
        // A 100,000-event batch needs 40-48 MB: 16MB is raised to 64MB, which is enough;
        // 8MB to 32MB, which is not, so the batch is stored with the last resort (1 GiB);
        // at 1MB the appender itself runs out, in its own words.
        for limit in ["16MB", "8MB", "1MB"] {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = crate::DuckConfig {
                memory_limit: limit.into(),
                ..crate::DuckConfig::default()
            };
            let store =
                DuckStore::open(&dir.path().join("footfall.duckdb"), &config).expect("open");
            let configured = store.setting("memory_limit");
            let events = page_views(100_000, 4, 1_000_000, 500, &["Google"]);
            // Within the configured limit alone the batch does not fit (and leaves nothing).
            let alone = store
                .inner
                .append_on(&store.inner.writer.lock(), &events, 1);
            assert!(
                alone.as_ref().is_err_and(out_of_memory),
                "{limit}: {alone:?}"
            );
            store.append(Arc::new(events), 1).await.expect("stored");
            assert_eq!(store.setting("memory_limit"), configured, "{limit}");
            let (stored, lsn): (u64, u64) = store
                .inner
                .with_reader(|conn| {
                    conn.query_row(
                        "SELECT (SELECT count(*) FROM events), (SELECT max(lsn) FROM wal_checkpoint)",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(db_err)
                })
                .expect("count");
            assert_eq!((stored, lsn), (100_000, 1), "{limit}");
        }
    }

    /// A store batch runs on one DuckDB thread (`OneDuckThread`); the configured count is
    /// in force again after it, whether the batch was stored or not.
    #[tokio::test]
    async fn a_store_batch_leaves_the_configured_threads() {
        let store = DuckStore::memory().expect("store");
        assert_eq!(store.setting("threads"), "2");
        let events = vec![ev(1, 1, DAY, "pageview", "/", "Google")];
        store.append(Arc::new(events), 1).await.expect("append");
        assert_eq!(store.setting("threads"), "2");
        store
            .inner
            .writer
            .lock()
            .execute_batch("DROP TABLE wal_checkpoint")
            .expect("drop");
        let events = vec![ev(2, 2, DAY, "pageview", "/", "Google")];
        assert!(store.append(Arc::new(events), 2).await.is_err());
        assert_eq!(store.setting("threads"), "2");
    }

    /// Every column of `events` reads back as appended (Arrow record batches), NULLs
    /// included, times to the millisecond, over a batch spanning several record batches,
    /// in visit order.
    #[tokio::test]
    async fn appended_events_read_back_column_for_column() {
        let store = DuckStore::memory().expect("store");
        let n = ARROW_CHUNK_ROWS as u64 * 2 + 7;
        let events: Vec<Event> = (0..n)
            .rev()
            .map(|i| Event {
                site_id: 1 + (i % 2) as u32,
                ts_us: DAY + i as i64 * 1_000_001,
                event_id: u64::MAX - i,
                client_id: i % 3 == 0,
                visitor_id: i / 4,
                session_id: i / 4 + (1 << 40),
                session_start_us: DAY,
                name: if i % 5 == 0 {
                    "signup".into()
                } else {
                    "pageview".into()
                },
                interactive: i % 7 != 0,
                hostname: format!("h{}.example.com", i % 3).into(),
                pathname: format!("/p/{i}/\u{e9}t\u{e9}").into(),
                title: if i % 4 == 0 {
                    Default::default()
                } else {
                    format!("T{i}").into()
                },
                engagement_ms: (i * 13) as u32,
                scroll_depth: (i % 3 != 0).then_some((i % 101) as u8),
                revenue_amount: (i % 6 == 0).then_some(i as f64 / 8.0),
                revenue_currency: (i % 6 == 0).then(|| "EUR".to_string()),
                props: if i % 9 == 0 {
                    vec![
                        ("k".into(), format!("v{i}")),
                        ("pl\u{e4}n".into(), format!("w\u{e9}rt {i}")),
                    ]
                } else {
                    Vec::new()
                },
                visit: None,
            })
            .collect();
        store.inner.append_with_lsn(&events, 1).expect("append");
        let text = |e: &Event| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{}",
                e.site_id,
                stored_time_us(e.ts_us),
                e.event_id,
                e.client_id,
                e.session_id,
                e.name,
                e.interactive,
                e.hostname,
                e.pathname,
                e.title,
                e.engagement_ms,
                e.scroll_depth,
                e.revenue_amount,
                e.revenue_currency,
                !e.props.is_empty()
            )
        };
        let mut expected: Vec<&Event> = events.iter().collect();
        expected.sort_by_key(|e| (e.site_id, e.session_id, e.ts_us, e.event_id));
        let expected: Vec<String> = expected.into_iter().map(text).collect();
        let conn = store.inner.writer.lock();
        let mut stmt = conn
            .prepare(
                "SELECT site_id, epoch_us(ts), event_id, client_id, session_id, name, \
                 interactive, hostname, pathname, title, engagement_ms, scroll_depth, \
                 revenue_amount, revenue_currency, has_props FROM events \
                 ORDER BY site_id, session_id, ts, event_id",
            )
            .expect("prepare");
        let stored: Vec<String> = stmt
            .query_map([], |r| {
                Ok(text(&Event {
                    site_id: r.get(0)?,
                    ts_us: r.get(1)?,
                    event_id: r.get(2)?,
                    client_id: r.get(3)?,
                    session_id: r.get(4)?,
                    name: text_column(r, 5)?,
                    interactive: r.get(6)?,
                    hostname: text_column(r, 7)?,
                    pathname: text_column(r, 8)?,
                    title: text_column(r, 9)?,
                    engagement_ms: r.get(10)?,
                    scroll_depth: r.get(11)?,
                    revenue_amount: r.get(12)?,
                    revenue_currency: r.get(13)?,
                    props: if r.get::<_, bool>(14)? {
                        vec![(String::new(), String::new())]
                    } else {
                        Vec::new()
                    },
                    ..Event::default()
                }))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(stored.len(), n as usize);
        assert_eq!(stored, expected);
        let mut props: Vec<(u32, u64, String, String)> = conn
            .prepare("SELECT site_id, event_id, key, value FROM event_props")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("props");
        props.sort();
        let mut expected_props: Vec<(u32, u64, String, String)> = events
            .iter()
            .flat_map(|e| {
                e.props
                    .iter()
                    .map(|(k, v)| (e.site_id, e.event_id, k.clone(), v.clone()))
            })
            .collect();
        expected_props.sort();
        assert!(!expected_props.is_empty());
        assert_eq!(props, expected_props);
    }

    #[tokio::test]
    async fn merged_rollup_rows_equal_a_recompute_from_the_events() {
        let store = DuckStore::memory().expect("store");
        // A small deterministic generator: visits spread over many batches, hits out of
        // order, equal timestamps, visits without page views, interactive events.
        let mut state: u64 = 42;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let names = ["pageview", "pageview", "engagement", "signup", "click"];
        let mut event_id = 0u64;
        let mut opened: Vec<bool> = vec![false; 40];
        for batch in 0..30u64 {
            let mut events = Vec::new();
            for _ in 0..next(60) {
                let session = next(40);
                event_id += 1;
                let name = names[next(names.len() as u64) as usize];
                // Mostly moving forward in time, sometimes earlier or at the same instant.
                let ts = DAY + (batch as i64 * 10 + next(12) as i64 - 2) * MIN / 10;
                let mut e = ev(
                    session + 1,
                    session + 100,
                    ts,
                    name,
                    &format!("/p{}", next(5)),
                    if session % 2 == 0 { "Google" } else { "" },
                );
                e.event_id = if next(4) == 0 {
                    1_000_000 - event_id
                } else {
                    event_id
                };
                e.interactive = next(2) == 0;
                // Later hits carry no attributes, except now and then one that became
                // the visit's start (processed out of order).
                if std::mem::replace(&mut opened[session as usize], true) && next(5) != 0 {
                    e = later(e);
                }
                events.push(e);
            }
            store
                .append(Arc::new(events), batch + 1)
                .await
                .expect("append");
        }
        let merged = rollup_text(&store);
        {
            let conn = store.inner.writer.lock();
            let min = stage_from_sessions(&conn, "true", &[])
                .expect("stage")
                .expect("visits");
            refresh_touched_sessions(&conn, min).expect("recompute");
        }
        assert_eq!(merged, rollup_text(&store));
        assert!(merged.lines().count() > 30, "{merged}");
        // Every event carries its visit's visitor number (0009).
        let conn = store.inner.writer.lock();
        let (events, unlike): (i64, i64) = conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE e.visitor_no IS DISTINCT FROM s.visitor_no) \
                 FROM events e LEFT JOIN sessions s USING (site_id, session_id)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("numbers");
        assert!(events > 100, "{events}");
        assert_eq!(unlike, 0);
    }

    /// Queries sent at once take turns (`Inner::query_turns`) and answer what they answer
    /// one after another; a query that waited behind the same one is served its result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn queries_sent_at_once_answer_as_one_after_another() {
        let store = DuckStore::memory().expect("store");
        let events = page_views(20_000, 5, 4_000_000, 37, &["Google", "Bing", "", "Twitter"]);
        store.append(Arc::new(events), 1).await.expect("append");
        let range = serde_json::json!(["2024-03-09", "2024-03-12"]);
        let queries: Vec<Query> = [
            serde_json::json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate"]}),
            serde_json::json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:hour"]}),
            serde_json::json!({"metrics": ["visitors"], "dimensions": ["event:page"]}),
            serde_json::json!({"metrics": ["visitors", "visit_duration"], "dimensions": ["visit:source"]}),
            serde_json::json!({"metrics": ["visitors"], "dimensions": ["visit:entry_page"],
                "filters": [["is", "visit:source", ["Google"]]]}),
        ]
        .into_iter()
        .map(|mut body| {
            body["site_id"] = "example.com".into();
            body["date_range"] = range.clone();
            query(body)
        })
        .collect();
        let mut one_by_one = Vec::new();
        for q in &queries {
            one_by_one.push(store.run(1, site(), q.clone()).await.expect("query"));
        }
        assert!(one_by_one.iter().all(|out| !out.results.is_empty()));
        // Each query three times, all at once, on a store whose cache was cleared.
        store
            .append(Arc::new(vec![ev(999_999, 9, 0, "pageview", "/", "")]), 2)
            .await
            .expect("append");
        let handles: Vec<_> = (0..3)
            .flat_map(|_| queries.iter().cloned().enumerate())
            .map(|(i, q)| {
                let store = store.clone();
                tokio::spawn(async move { (i, store.run(1, site(), q).await.expect("query")) })
            })
            .collect();
        for handle in handles {
            let (i, out) = handle.await.expect("task");
            assert_eq!(out, one_by_one[i], "query {i}");
        }
    }

    /// (site, visitor id, visitor number) of every visit, checked to be one number per
    /// visitor and one visitor per number within a site.
    fn visitor_numbers(store: &DuckStore) -> Vec<(u32, u64, u32)> {
        let conn = store.inner.writer.lock();
        let mut stmt = conn
            .prepare("SELECT DISTINCT site_id, visitor_id, visitor_no FROM sessions ORDER BY ALL")
            .expect("prepare");
        let rows: Vec<(u32, u64, u32)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let ids: std::collections::HashSet<(u32, u64)> = rows.iter().map(|r| (r.0, r.1)).collect();
        let numbers: std::collections::HashSet<(u32, u32)> =
            rows.iter().map(|r| (r.0, r.2)).collect();
        assert_eq!(ids.len(), rows.len(), "one number per visitor: {rows:?}");
        assert_eq!(
            numbers.len(),
            rows.len(),
            "one visitor per number: {rows:?}"
        );
        rows
    }

    /// The writer numbers visitors densely per site (`number_staged_visitors`): a visit
    /// continued in a later batch and a returning visitor's new visit keep the number, a
    /// new visitor takes the next one, and visitor counts read the numbers.
    #[tokio::test]
    async fn visitors_are_numbered_densely_per_site_across_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(dir.path());
        let on_site = |site_id: u32, e: Event| Event { site_id, ..e };
        store
            .append(
                Arc::new(vec![
                    ev(1, 100, DAY, "pageview", "/", "Google"),
                    ev(2, 100, DAY + 40 * MIN, "pageview", "/", "Google"),
                    ev(3, 200, DAY + MIN, "pageview", "/a", "Bing"),
                    on_site(2, ev(4, 100, DAY, "pageview", "/", "Google")),
                ]),
                1,
            )
            .await
            .expect("append");
        assert_eq!(
            visitor_numbers(&store),
            vec![(1, 100, 0), (1, 200, 1), (2, 100, 0)]
        );
        store
            .append(
                Arc::new(vec![
                    later(ev(1, 100, DAY + 2 * MIN, "pageview", "/b", "Google")),
                    ev(5, 200, DAY + 90 * MIN, "pageview", "/", "Bing"),
                    ev(6, 300, DAY + 91 * MIN, "pageview", "/", "Bing"),
                    ev(7, 400, DAY + 92 * MIN, "pageview", "/", "Bing"),
                ]),
                2,
            )
            .await
            .expect("append");
        assert_eq!(
            visitor_numbers(&store),
            vec![
                (1, 100, 0),
                (1, 200, 1),
                (1, 300, 2),
                (1, 400, 3),
                (2, 100, 0)
            ]
        );
        // Erased, a visitor's number stays unused; retention recomputes a visit keeping
        // its own.
        assert_eq!(store.erase_visitor(1, 400).await.expect("erase"), 1);
        assert_eq!(store.delete_before(1, DAY + MIN).await.expect("prune"), 1);
        store
            .append(
                Arc::new(vec![ev(8, 500, DAY + 100 * MIN, "pageview", "/", "Bing")]),
                3,
            )
            .await
            .expect("append");
        assert_eq!(
            visitor_numbers(&store),
            vec![
                (1, 100, 0),
                (1, 200, 1),
                (1, 300, 2),
                (1, 500, 4),
                (2, 100, 0)
            ]
        );
        let visitors = store
            .run(
                1,
                site(),
                query(serde_json::json!({"site_id": "example.com",
                    "date_range": ["2024-03-10", "2024-03-10"], "metrics": ["visitors", "visits"]})),
            )
            .await
            .expect("query");
        assert_eq!(
            visitors.results[0].metrics,
            vec![serde_json::json!(4), serde_json::json!(6)]
        );
    }

    /// A browser sent as the text "(not set)" is stored empty (migration 11): the
    /// breakdown, which labels the empty value after grouping, shows one "(not set)" row
    /// with both visitors, and the `is "(not set)"` filter finds them both.
    #[tokio::test]
    async fn a_derived_value_named_not_set_is_stored_empty() {
        let store = DuckStore::memory().expect("store");
        let with_browser = |mut e: Event, browser: &str, os: &str| {
            e.visit = Some(Arc::new(VisitAttrs {
                browser: browser.into(),
                os: os.into(),
                ..(*e.visit.expect("attributes")).clone()
            }));
            e
        };
        store
            .append(
                Arc::new(vec![
                    with_browser(ev(1, 10, DAY, "pageview", "/", ""), NOT_SET, "Linux"),
                    with_browser(ev(2, 20, DAY + MIN, "pageview", "/", ""), "", "Linux"),
                    with_browser(ev(3, 30, DAY + 2 * MIN, "pageview", "/", ""), "Firefox", ""),
                ]),
                1,
            )
            .await
            .expect("append");
        let stored: Vec<String> = store
            .inner
            .writer
            .lock()
            .prepare("SELECT browser FROM sessions ORDER BY session_id")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(stored, vec!["", "", "Firefox"]);
        let rows = |body: serde_json::Value| {
            let store = &store;
            async move {
                let out = store.run(1, site(), query(body)).await.expect("query");
                out.results
                    .iter()
                    .map(|r| (r.dimensions.clone(), r.metrics.clone()))
                    .collect::<Vec<_>>()
            }
        };
        let range = serde_json::json!(["2024-03-09", "2024-03-11"]);
        assert_eq!(
            rows(
                serde_json::json!({"site_id": "example.com", "date_range": range,
                "metrics": ["visitors"], "dimensions": ["visit:browser", "visit:os"]})
            )
            .await,
            vec![
                (
                    vec![serde_json::json!("(not set)"), serde_json::json!("Linux")],
                    vec![serde_json::json!(2)]
                ),
                (
                    vec![serde_json::json!("Firefox"), serde_json::json!("(not set)")],
                    vec![serde_json::json!(1)]
                ),
            ]
        );
        assert_eq!(
            rows(
                serde_json::json!({"site_id": "example.com", "date_range": range,
                "metrics": ["visitors"], "filters": [["is", "visit:browser", ["(not set)"]]]})
            )
            .await,
            vec![(vec![], vec![serde_json::json!(2)])]
        );
    }

    #[tokio::test]
    async fn writes_keep_the_rollup_in_step_and_results_fresh() {
        let store = DuckStore::memory().expect("store");
        let visitors = query(serde_json::json!({"site_id": "example.com",
            "date_range": ["2024-03-09", "2024-03-11"], "metrics": ["visitors", "pageviews"],
            "filters": [["is", "visit:source", ["Google"]]]}));
        // A visit continued across two batches keeps the attributes of its first event
        // and the numbers of all its events.
        store
            .append(
                Arc::new(vec![
                    ev(2, 20, DAY + 5 * MIN, "pageview", "/b", "Bing"),
                    ev(1, 10, DAY, "pageview", "/", "Google"),
                ]),
                1,
            )
            .await
            .expect("append");
        let first = store.run(1, site(), visitors.clone()).await.expect("query");
        assert_eq!(
            first.results[0].metrics,
            vec![serde_json::json!(1), serde_json::json!(1)]
        );
        store
            .append(
                Arc::new(vec![
                    later(ev(1, 10, DAY + MIN, "pageview", "/x", "")),
                    later(ev(1, 10, DAY + 2 * MIN, "engagement", "/x", "")),
                ]),
                2,
            )
            .await
            .expect("append");
        // The cached result of the first query is not served after the second write.
        let second = store.run(1, site(), visitors).await.expect("query");
        assert_eq!(
            second.results[0].metrics,
            vec![serde_json::json!(1), serde_json::json!(2)]
        );
        assert_eq!(
            sessions(&store),
            vec![
                (1, 10, DAY, DAY + 2 * MIN, 2, "/x".into(), "Google".into()),
                (
                    2,
                    20,
                    DAY + 5 * MIN,
                    DAY + 5 * MIN,
                    1,
                    "/b".into(),
                    "Bing".into()
                ),
            ]
        );
        assert_eq!(store.checkpoint().await.expect("lsn"), 2);

        // Retention: visit 1 straddles the cutoff and is recomputed from what is left
        // (it now starts at its second event); visit 2 is untouched.
        assert_eq!(store.delete_before(1, DAY + MIN).await.expect("prune"), 1);
        assert_eq!(
            sessions(&store),
            vec![
                (
                    1,
                    10,
                    DAY + MIN,
                    DAY + 2 * MIN,
                    1,
                    "/x".into(),
                    "Google".into()
                ),
                (
                    2,
                    20,
                    DAY + 5 * MIN,
                    DAY + 5 * MIN,
                    1,
                    "/b".into(),
                    "Bing".into()
                ),
            ]
        );
        // Erase: the visitor's events (found through its visits) and visits go together.
        assert_eq!(store.erase_visitor(1, 10).await.expect("erase"), 2);
        assert_eq!(
            sessions(&store),
            vec![(
                2,
                20,
                DAY + 5 * MIN,
                DAY + 5 * MIN,
                1,
                "/b".into(),
                "Bing".into()
            )]
        );
        let left: u64 = store
            .inner
            .writer
            .lock()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 1);
    }

    /// A cached result over a past range is served again after appends that touch only
    /// later times (today's live traffic under a "30d" dashboard), and recomputed after
    /// one that reaches into the range, including a later event of a visit that started
    /// in it. The store is changed behind the cache's back to tell the two apart.
    #[tokio::test]
    async fn results_of_past_ranges_survive_appends_after_them() {
        const DAY_US: i64 = 24 * 60 * MIN;
        let store = DuckStore::memory().expect("store");
        let day = query(serde_json::json!({"site_id": "example.com",
            "date_range": ["2024-03-10", "2024-03-10"], "metrics": ["visitors", "pageviews"]}));
        let metrics = |out: &footfall_core::query::QueryOutput| {
            out.results.first().map(|r| r.metrics.clone())
        };
        let hidden_delete = |store: &DuckStore| {
            store
                .inner
                .writer
                .lock()
                .execute_batch("DELETE FROM events; DELETE FROM sessions;")
                .expect("delete");
        };
        store
            .append(
                Arc::new(vec![
                    ev(1, 10, DAY, "pageview", "/", "Google"),
                    later(ev(1, 10, DAY + MIN, "pageview", "/a", "")),
                ]),
                1,
            )
            .await
            .expect("append");
        let cached = store.run(1, site(), day.clone()).await.expect("query");
        assert_eq!(
            metrics(&cached),
            Some(vec![serde_json::json!(1), serde_json::json!(2)])
        );

        hidden_delete(&store);
        // The next day's traffic, on this site and another: the answer stands.
        let mut other_site = ev(5, 50, DAY, "pageview", "/", "");
        other_site.site_id = 2;
        store
            .append(
                Arc::new(vec![
                    ev(2, 20, DAY + DAY_US, "pageview", "/", ""),
                    other_site,
                ]),
                2,
            )
            .await
            .expect("append");
        let again = store.run(1, site(), day.clone()).await.expect("query");
        assert_eq!(metrics(&again), metrics(&cached));

        // A visit inside the range: recomputed (the hidden delete shows).
        store
            .append(
                Arc::new(vec![ev(3, 30, DAY + 30 * MIN, "pageview", "/", "")]),
                3,
            )
            .await
            .expect("append");
        let fresh = store.run(1, site(), day.clone()).await.expect("query");
        assert_eq!(
            metrics(&fresh),
            Some(vec![serde_json::json!(1), serde_json::json!(1)])
        );

        // A visit that started in the range goes on the next day: its start is before
        // the range's end, so the result is recomputed too.
        hidden_delete(&store);
        let mut continued = later(ev(3, 30, DAY + DAY_US + 5 * MIN, "pageview", "/b", ""));
        continued.session_start_us = DAY + 30 * MIN;
        store
            .append(Arc::new(vec![continued]), 4)
            .await
            .expect("append");
        let after = store.run(1, site(), day).await.expect("query");
        assert_ne!(metrics(&after), metrics(&fresh));
    }
}
