//! The native lists the Stats API does not express (DESIGN §5): visits, one visit with its
//! events, and visitors. Plain SQL over the visit rollup (`sessions`, one row per visit
//! with its attributes) and, for one visit, its `events`.

use crate::db_err;
use chrono::{DateTime, SecondsFormat};
use duckdb::types::Value as DbValue;
use duckdb::{Connection, Row, params, params_from_iter};
use footfall_store::{
    ListFilter, SessionDetail, SessionEvent, SessionSummary, StoreResult, VisitorSummary,
    engagement_score,
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
    let mut sql = String::from(
        "site_id = ? AND session_start >= make_timestamp(?) AND session_start < make_timestamp(?)",
    );
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
    args.push(DbValue::UInt(f.limit));
    args.push(DbValue::UInt(f.offset));
    // The latest visit (by start) gives the visitor's current attributes.
    let latest = |c: &str| format!("arg_max({c}, session_start)");
    let mut stmt = conn
        .prepare(&format!(
            "SELECT visitor_id, epoch_us(min(session_start)), epoch_us(max(last_ts)), \
             CAST(count(*) AS UBIGINT), CAST(sum(pageviews) AS UBIGINT), \
             CAST(sum((epoch_us(last_ts) - epoch_us(session_start)) // 1000000) AS BIGINT), \
             {}, {}, {}, {}, {}, {}, {}, {} \
             FROM sessions WHERE {cond} GROUP BY visitor_id \
             ORDER BY max(last_ts) DESC, visitor_id LIMIT ? OFFSET ?",
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
