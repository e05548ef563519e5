//! `EventSink` on DuckDB: batches go in through the Appender inside one transaction that
//! also records the WAL position, so a replay after a crash never stores twice.

use crate::{DuckStore, Inner, db_err};
use async_trait::async_trait;
use duckdb::types::{TimeUnit, Value};
use duckdb::{Connection, params};
use footfall_core::Event;
use footfall_core::event::{ENGAGEMENT, PAGEVIEW};
use footfall_store::{EventSink, RecentSession, StoreResult};
use std::sync::atomic::Ordering;

fn ts(us: i64) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, us)
}

/// Appends a batch clustered by visit: (site, session, time) order keeps a visit's
/// events together on disk, where its session id compresses to one run and its
/// timestamps to a narrow range (`events` has no visitor or visit attributes, see 0004).
fn append_events(conn: &Connection, events: &[Event]) -> duckdb::Result<()> {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| (e.site_id, e.session_id, e.ts_us, e.event_id));
    let mut app = conn.appender("events")?;
    for e in order {
        app.append_row(params![
            e.site_id,
            ts(e.ts_us),
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
            !e.props.is_empty(),
        ])?;
    }
    app.flush()?;
    drop(app);
    if events.iter().any(|e| !e.props.is_empty()) {
        let mut props = conn.appender("event_props")?;
        for e in events {
            for (k, val) in &e.props {
                props.append_row(params![e.site_id, e.event_id, k, val])?;
            }
        }
        props.flush()?;
    }
    Ok(())
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
    city_name VARCHAR, org VARCHAR, label VARCHAR)";

/// Recomputes the `sessions` rows of the visits in `touched_sessions`: numbers from
/// their events, attributes from the staged row. A visit without events left (retention)
/// loses its row. `min_id` lets zone maps skip row groups older than the oldest touched
/// visit (ids are sequential, so old row groups hold only smaller ones). The exit
/// tie-break on `event_id` matches the query builder's raw path.
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

/// Fills `touched_sessions` with the distinct visits of a batch; returns the smallest id.
/// A visit's attributes come with its first event only (`Event::visit`); a visit whose
/// first event was in an earlier batch keeps the attributes of its `sessions` row.
fn stage_batch(conn: &Connection, events: &[Event]) -> duckdb::Result<Option<u64>> {
    conn.execute("DELETE FROM touched_sessions", [])?;
    let columns: Vec<&str> = VISIT_COLUMNS.split(", ").collect();
    let mut firsts: Vec<&Event> = events.iter().collect();
    // Per visit, the event carrying the attributes (if any) sorts first.
    firsts.sort_by_key(|e| (e.session_id, e.site_id, e.visit.is_none()));
    firsts.dedup_by_key(|e| (e.session_id, e.site_id));
    let mut app = conn.appender("touched_sessions")?;
    let mut unknown = 0usize;
    for e in &firsts {
        let Some(v) = &e.visit else {
            unknown += 1;
            // Attributes NULL: filled from the visit's row below.
            let mut row = vec![
                Value::UInt(e.site_id),
                Value::UBigInt(e.session_id),
                Value::UBigInt(e.visitor_id),
            ];
            row.resize(3 + columns.len(), Value::Null);
            let row: Vec<&dyn duckdb::ToSql> =
                row.iter().map(|v| v as &dyn duckdb::ToSql).collect();
            app.append_row(row.as_slice())?;
            continue;
        };
        app.append_row(params![
            e.site_id,
            e.session_id,
            e.visitor_id,
            v.entry_page,
            v.entry_hostname,
            v.referrer,
            v.source,
            v.channel,
            v.utm_source,
            v.utm_medium,
            v.utm_campaign,
            v.utm_content,
            v.utm_term,
            v.device,
            v.browser,
            v.browser_version,
            v.os,
            v.os_version,
            v.country,
            v.region,
            v.city,
            v.country_name,
            v.region_name,
            v.city_name,
            v.org,
            v.label,
        ])?;
    }
    app.flush()?;
    drop(app);
    let min_id = firsts.first().map(|e| e.session_id);
    if unknown > 0 {
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
            params![min_id.unwrap_or(0)],
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
    }
    Ok(min_id)
}

/// Fills `touched_sessions` from the existing `sessions` rows picked by `cond` (with
/// `params`); returns the smallest id.
fn stage_from_sessions(
    conn: &Connection,
    cond: &str,
    params: &[&dyn duckdb::ToSql],
) -> duckdb::Result<Option<u64>> {
    conn.execute("DELETE FROM touched_sessions", [])?;
    conn.execute(
        &format!(
            "INSERT INTO touched_sessions SELECT site_id, session_id, visitor_id, {VISIT_COLUMNS} \
             FROM sessions WHERE {cond}"
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
    fn append_with_lsn(&self, events: &[Event], lsn: u64) -> StoreResult<()> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN TRANSACTION").map_err(db_err)?;
        let result = append_events(&conn, events)
            .and_then(|()| stage_batch(&conn, events))
            .and_then(|min| match min {
                Some(min) => refresh_touched_sessions(&conn, min),
                None => Ok(()),
            })
            .and_then(|()| {
                conn.execute(
                    "INSERT OR REPLACE INTO wal_checkpoint VALUES (0, ?)",
                    params![lsn],
                )
                .map(|_| ())
            });
        match result {
            Ok(()) => {
                let committed = conn.execute_batch("COMMIT").map_err(db_err);
                self.generation.fetch_add(1, Ordering::Release);
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
        match f(&conn) {
            Ok(r) => {
                let committed = conn.execute_batch("COMMIT").map_err(db_err);
                self.generation.fetch_add(1, Ordering::Release);
                committed.map(|()| r)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db_err(e))
            }
        }
    }
}

/// Visits active in the last `window` seconds before each site's newest event, from the
/// rollup (start-up reads these to continue visits across a restart).
const RECENT_SESSIONS_SQL: &str = "
WITH newest AS (SELECT site_id, max(last_ts) AS mx FROM sessions GROUP BY site_id)
SELECT s.site_id, s.visitor_id, s.session_id, epoch_us(s.session_start), epoch_us(s.last_ts)
FROM sessions s JOIN newest n ON s.site_id = n.site_id
WHERE s.last_ts >= n.mx - to_seconds(?::BIGINT)";

#[async_trait]
impl EventSink for DuckStore {
    async fn append(&self, events: std::sync::Arc<Vec<Event>>, lsn: u64) -> StoreResult<()> {
        self.blocking(move |inner| inner.append_with_lsn(&events, lsn))
            .await
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

    async fn client_event_ids(&self) -> StoreResult<Vec<u64>> {
        self.blocking(|inner| {
            inner.with_reader(|conn| {
                // Column batches, not rows: start-up reads every client id (10M rows: ~3 s
                // row by row).
                let mut stmt = conn
                    .prepare("SELECT event_id FROM events WHERE client_id")
                    .map_err(db_err)?;
                let mut ids = Vec::new();
                for batch in stmt.query_arrow([]).map_err(db_err)? {
                    let column = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<duckdb::arrow::array::UInt64Array>()
                        .ok_or_else(|| {
                            footfall_store::StoreError::Backend("event_id is not UBIGINT".into())
                        })?;
                    ids.extend(column.values().iter().copied());
                }
                Ok(ids)
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
                        })
                    })
                    .map_err(db_err)?;
                let visits = rows.collect::<Result<Vec<_>, _>>().map_err(db_err);
                // The last start-up read (after the client ids): nothing later needs
                // the blocks these scans cached.
                inner.release_cached_buffers(conn);
                visits
            })
        })
        .await
    }

    async fn delete_before(&self, site_id: u32, before_us: i64) -> StoreResult<u64> {
        self.blocking(move |inner| {
            inner.write_tx(|conn| {
                let cutoff = ts(before_us);
                // Visits that straddle the cutoff keep their later events: recompute them
                // (the attributes come from their rollup rows, staged before deleting).
                let straddling = stage_from_sessions(
                    conn,
                    "site_id = ? AND session_start < ? AND last_ts >= ?",
                    params![site_id, cutoff, cutoff],
                )?;
                conn.execute(
                    "DELETE FROM event_props WHERE site_id = ? AND event_id IN \
                     (SELECT event_id FROM events WHERE site_id = ? AND ts < ?)",
                    params![site_id, site_id, cutoff],
                )?;
                let n = conn.execute(
                    "DELETE FROM events WHERE site_id = ? AND ts < ?",
                    params![site_id, cutoff],
                )?;
                conn.execute(
                    "DELETE FROM sessions WHERE site_id = ? AND session_start < ?",
                    params![site_id, cutoff],
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
                for table in ["event_props", "sessions", "events"] {
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
mod tests {
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
        }
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
}
