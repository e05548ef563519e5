//! The native lists the Stats API does not express (DESIGN §5): visits, one visit with its
//! events, and visitors; and the export of events with their visits. Plain SQL over the
//! visit rollup (`sessions`, one row per visit with its attributes) and `events`.

use crate::db_err;
use chrono::{DateTime, SecondsFormat};
use duckdb::types::Value as DbValue;
use duckdb::{Connection, Row, params, params_from_iter};
use footfall_store::{
    EachExportChunk, ExportRow, ListFilter, SessionDetail, SessionEvent, SessionSummary,
    StoreResult, VisitorSummary, engagement_score,
};
use std::collections::BTreeMap;

/// The `sessions` columns `summary_from_row` reads, in its order.
const SUMMARY_COLUMNS: &str = "session_id, visitor_id, epoch_us(session_start), \
     epoch_us(last_ts), pageviews, interactive, entry_page, exit_page, source, referrer, \
     channel, utm_source, utm_medium, utm_campaign, device, browser, os, country, \
     region_name, city_name, org, label";

/// RFC 3339 in UTC with milliseconds.
fn rfc3339(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn summary_from_row(r: &Row<'_>) -> duckdb::Result<SessionSummary> {
    let session_id: u64 = r.get(0)?;
    let visitor_id: u64 = r.get(1)?;
    let (start_us, last_us): (i64, i64) = (r.get(2)?, r.get(3)?);
    let pageviews: u32 = r.get(4)?;
    let interactive_events: u32 = r.get(5)?;
    Ok(SessionSummary {
        session_id: session_id.to_string(),
        visitor: format!("{visitor_id:016x}"),
        started: rfc3339(start_us),
        ended: rfc3339(last_us),
        duration_secs: (last_us - start_us) / 1_000_000,
        pageviews,
        interactive_events,
        bounced: pageviews <= 1 && interactive_events == 0,
        entry_page: r.get(6)?,
        exit_page: r.get(7)?,
        source: r.get(8)?,
        referrer: r.get(9)?,
        channel: r.get(10)?,
        utm_source: r.get(11)?,
        utm_medium: r.get(12)?,
        utm_campaign: r.get(13)?,
        device: r.get(14)?,
        browser: r.get(15)?,
        os: r.get(16)?,
        country: r.get(17)?,
        region_name: r.get(18)?,
        city_name: r.get(19)?,
        org: r.get(20)?,
        label: r.get(21)?,
    })
}

/// The `WHERE` condition on `sessions` for `f`, with its parameters.
fn conditions(site_id: u32, f: &ListFilter) -> (String, Vec<DbValue>) {
    let mut sql = String::from(concat!(
        "site_id = ? AND session_start >= ",
        ts_param!(),
        " AND session_start < ",
        ts_param!()
    ));
    let mut args = vec![
        DbValue::UInt(site_id),
        DbValue::BigInt(f.start_us),
        DbValue::BigInt(f.end_us),
    ];
    if let Some(v) = f.visitor_id {
        sql.push_str(" AND visitor_id = ?");
        args.push(DbValue::UBigInt(v));
    }
    for (column, value) in [
        ("country", &f.country),
        ("city_name", &f.city_name),
        ("source", &f.source),
        ("device", &f.device),
        ("browser", &f.browser),
        ("os", &f.os),
        ("entry_page", &f.entry_page),
    ] {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            args.push(DbValue::Text(v.clone()));
        }
    }
    if let Some(org) = &f.org {
        sql.push_str(" AND contains(lower(org), lower(?))");
        args.push(DbValue::Text(org.clone()));
    }
    (sql, args)
}

pub(crate) fn sessions(
    conn: &Connection,
    site_id: u32,
    f: &ListFilter,
) -> StoreResult<(Vec<SessionSummary>, u64)> {
    let (cond, mut args) = conditions(site_id, f);
    let total: u64 = conn
        .query_row(
            &format!("SELECT CAST(count(*) AS UBIGINT) FROM sessions WHERE {cond}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    args.push(DbValue::UInt(f.limit));
    args.push(DbValue::UInt(f.offset));
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM sessions WHERE {cond} \
             ORDER BY session_start DESC, session_id DESC LIMIT ? OFFSET ?"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), summary_from_row)
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok((rows, total))
}

pub(crate) fn session(
    conn: &Connection,
    site_id: u32,
    session_id: u64,
) -> StoreResult<Option<SessionDetail>> {
    let summary = conn
        .prepare(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM sessions WHERE site_id = ? AND session_id = ?"
        ))
        .and_then(|mut s| {
            s.query_map(params![site_id, session_id], summary_from_row)?
                .next()
                .transpose()
        })
        .map_err(db_err)?;
    let Some(summary) = summary else {
        return Ok(None);
    };
    let mut props: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT p.event_id, p.key, p.value FROM event_props p WHERE p.site_id = ? \
             AND p.event_id IN (SELECT event_id FROM events WHERE site_id = ? \
             AND session_id = ? AND has_props)",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![site_id, site_id, session_id], |r| {
            Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })
        .map_err(db_err)?;
    for row in rows {
        let (event_id, key, value) = row.map_err(db_err)?;
        props.entry(event_id).or_default().insert(key, value);
    }
    let mut stmt = conn
        .prepare(
            "SELECT epoch_us(ts), name, hostname, pathname, title, engagement_ms, \
             scroll_depth, event_id FROM events WHERE site_id = ? AND session_id = ? \
             ORDER BY ts, event_id",
        )
        .map_err(db_err)?;
    let events = stmt
        .query_map(params![site_id, session_id], |r| {
            let engaged_ms: u32 = r.get(5)?;
            let event_id: u64 = r.get(7)?;
            Ok(SessionEvent {
                time: rfc3339(r.get(0)?),
                name: r.get(1)?,
                hostname: r.get(2)?,
                page: r.get(3)?,
                title: r.get(4)?,
                engaged_secs: f64::from(engaged_ms) / 1000.0,
                scroll_depth: r.get(6)?,
                props: props.remove(&event_id).unwrap_or_default(),
            })
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    let max_scroll = events.iter().filter_map(|e| e.scroll_depth).max();
    let engagement_score = engagement_score(
        summary.duration_secs,
        summary.pageviews,
        summary.interactive_events,
        max_scroll,
    );
    Ok(Some(SessionDetail {
        summary,
        events,
        engagement_score,
    }))
}

pub(crate) fn visitors(
    conn: &Connection,
    site_id: u32,
    f: &ListFilter,
) -> StoreResult<(Vec<VisitorSummary>, u64)> {
    let (cond, mut args) = conditions(site_id, f);
    let total: u64 = conn
        .query_row(
            &format!(
                "SELECT CAST(count(DISTINCT visitor_id) AS UBIGINT) FROM sessions WHERE {cond}"
            ),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    // The page of visitors first (two columns grouped), then their aggregates: grouping
    // every visitor of 30 days at 10M events with eight `arg_max` ran out of DuckDB's
    // 128 MB.
    let outer_args = args.clone();
    args.push(DbValue::UInt(f.limit));
    args.push(DbValue::UInt(f.offset));
    args.extend(outer_args);
    // The latest visit (by start) gives the visitor's current attributes.
    let latest = |c: &str| format!("arg_max({c}, session_start)");
    let mut stmt = conn
        .prepare(&format!(
            "WITH page AS (SELECT visitor_id, max(last_ts) AS seen FROM sessions WHERE {cond} \
                 GROUP BY visitor_id ORDER BY seen DESC, visitor_id LIMIT ? OFFSET ?) \
             SELECT visitor_id, epoch_us(min(session_start)), epoch_us(max(last_ts)), \
             CAST(count(*) AS UBIGINT), CAST(sum(pageviews) AS UBIGINT), \
             CAST(sum((epoch_us(last_ts) - epoch_us(session_start)) // 1000000) AS BIGINT), \
             {}, {}, {}, {}, {}, {}, {}, {} \
             FROM sessions JOIN page USING (visitor_id) WHERE {cond} GROUP BY visitor_id \
             ORDER BY max(last_ts) DESC, visitor_id",
            latest("country"),
            latest("region_name"),
            latest("city_name"),
            latest("org"),
            latest("device"),
            latest("browser"),
            latest("os"),
            latest("source"),
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            let visitor_id: u64 = r.get(0)?;
            Ok(VisitorSummary {
                visitor: format!("{visitor_id:016x}"),
                first_seen: rfc3339(r.get(1)?),
                last_seen: rfc3339(r.get(2)?),
                visits: r.get(3)?,
                pageviews: r.get(4)?,
                total_duration_secs: r.get(5)?,
                country: r.get(6)?,
                region_name: r.get(7)?,
                city_name: r.get(8)?,
                org: r.get(9)?,
                device: r.get(10)?,
                browser: r.get(11)?,
                os: r.get(12)?,
                source: r.get(13)?,
            })
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok((rows, total))
}

/// Events read per `export` chunk handed to the caller.
const EXPORT_CHUNK: usize = 2048;
/// One day: the export runs a query per day from the next stored event, so no sort holds
/// more than a day.
const DAY_US: i64 = 86_400 * 1_000_000;

pub(crate) fn export_count(
    conn: &Connection,
    site_id: u32,
    start_us: i64,
    end_us: i64,
) -> StoreResult<u64> {
    conn.query_row(
        concat!(
            "SELECT CAST(count(*) AS UBIGINT) FROM events WHERE site_id = ? AND ts >= ",
            ts_param!(),
            " AND ts < ",
            ts_param!()
        ),
        params![site_id, start_us, end_us],
        |r| r.get(0),
    )
    .map_err(db_err)
}

pub(crate) fn first_event_us(conn: &Connection, site_id: u32) -> StoreResult<Option<i64>> {
    conn.query_row(
        "SELECT epoch_us(min(ts)) FROM events WHERE site_id = ?",
        params![site_id],
        |r| r.get(0),
    )
    .map_err(db_err)
}

/// The export's columns: the event, its props as two parallel lists, its visit (only the
/// visits that can have events in the slice are read: zone maps skip the rest).
const EXPORT_SQL: &str = concat!(
    "SELECT epoch_us(e.ts), e.name, e.hostname, e.pathname, e.title, \
     v.visitor_id, e.session_id, e.engagement_ms, e.scroll_depth, e.revenue_amount, \
     e.revenue_currency, p.keys, p.vals, v.entry_page, v.source, v.referrer, v.channel, \
     v.utm_source, v.utm_medium, v.utm_campaign, v.utm_content, v.utm_term, v.device, \
     v.browser, v.browser_version, v.os, v.os_version, v.country, v.region, v.city_name, \
     v.org, v.label \
     FROM events e JOIN sessions v ON v.session_id = e.session_id AND v.site_id = ? \
         AND v.session_start < ",
    ts_param!(),
    " AND v.last_ts >= ",
    ts_param!(),
    " LEFT JOIN (SELECT event_id, list(key ORDER BY key) AS keys, \
         list(value ORDER BY key) AS vals FROM event_props WHERE site_id = ? \
         AND event_id IN (SELECT event_id FROM events WHERE site_id = ? AND has_props \
             AND ts >= ",
    ts_param!(),
    " AND ts < ",
    ts_param!(),
    ") GROUP BY event_id) p ON p.event_id = e.event_id AND e.has_props \
     WHERE e.site_id = ? AND e.ts >= ",
    ts_param!(),
    " AND e.ts < ",
    ts_param!(),
    " ORDER BY e.ts, e.event_id"
);

/// The time of the site's first event in `[from, end)`, if any.
const NEXT_EVENT_SQL: &str = concat!(
    "SELECT epoch_us(min(ts)) FROM events WHERE site_id = ? AND ts >= ",
    ts_param!(),
    " AND ts < ",
    ts_param!()
);

fn texts(v: DbValue) -> Vec<String> {
    match v {
        DbValue::List(items) => items
            .into_iter()
            .map(|i| match i {
                DbValue::Text(t) => t,
                _ => String::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn export_row(r: &Row<'_>) -> duckdb::Result<ExportRow> {
    let visitor_id: u64 = r.get(5)?;
    let session_id: u64 = r.get(6)?;
    let engaged_ms: u32 = r.get(7)?;
    let props = texts(r.get(11)?)
        .into_iter()
        .zip(texts(r.get(12)?))
        .collect();
    Ok(ExportRow {
        time: rfc3339(r.get(0)?),
        name: r.get(1)?,
        hostname: r.get(2)?,
        page: r.get(3)?,
        title: r.get(4)?,
        visitor: format!("{visitor_id:016x}"),
        session_id: session_id.to_string(),
        engaged_secs: f64::from(engaged_ms) / 1000.0,
        scroll_depth: r.get(8)?,
        revenue_amount: r.get(9)?,
        revenue_currency: r.get(10)?,
        props,
        entry_page: r.get(13)?,
        source: r.get(14)?,
        referrer: r.get(15)?,
        channel: r.get(16)?,
        utm_source: r.get(17)?,
        utm_medium: r.get(18)?,
        utm_campaign: r.get(19)?,
        utm_content: r.get(20)?,
        utm_term: r.get(21)?,
        device: r.get(22)?,
        browser: r.get(23)?,
        browser_version: r.get(24)?,
        os: r.get(25)?,
        os_version: r.get(26)?,
        country: r.get(27)?,
        region: r.get(28)?,
        city_name: r.get(29)?,
        org: r.get(30)?,
        label: r.get(31)?,
    })
}

pub(crate) fn export(
    conn: &Connection,
    site_id: u32,
    start_us: i64,
    end_us: i64,
    each: &mut EachExportChunk,
) -> StoreResult<()> {
    let mut stmt = conn.prepare(EXPORT_SQL).map_err(db_err)?;
    let mut next_event = conn.prepare(NEXT_EVENT_SQL).map_err(db_err)?;
    let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
    let mut from = start_us;
    // After a slice without events (and at the start) the next one starts at the next
    // stored event: the default range ("all") starts in 2000, and a query per empty day
    // (~9,800 of them) took tens of seconds before the first row of a small site. Not
    // after every slice: `min(ts)` reads the rest of the range each time.
    let mut look_ahead = true;
    while from < end_us {
        if look_ahead {
            let next = next_event
                .query_row(params![site_id, from, end_us], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .map_err(db_err)?;
            match next {
                Some(first) => from = first,
                None => break,
            }
        }
        let to = from.saturating_add(DAY_US).min(end_us);
        let rows = stmt
            .query_map(
                params![
                    site_id, to, from, site_id, site_id, from, to, site_id, from, to
                ],
                export_row,
            )
            .map_err(db_err)?;
        look_ahead = true;
        for row in rows {
            look_ahead = false;
            chunk.push(row.map_err(db_err)?);
            if chunk.len() == EXPORT_CHUNK {
                if !each(&chunk) {
                    return Ok(());
                }
                chunk.clear();
            }
        }
        from = to;
    }
    if !chunk.is_empty() {
        each(&chunk);
    }
    Ok(())
}
