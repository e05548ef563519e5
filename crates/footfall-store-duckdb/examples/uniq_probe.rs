//! Experiment (not part of the server): `count(DISTINCT visitor_id)` against `ff_uniq`
//! over the visitor numbers (`uniq.rs`) on the dashboard's shapes, over the last 30 days
//! of site 1 on a copy of a store. Prints the median of 7 alternating runs of each and
//! fails unless the two answers are equal.
//!
//! usage: cargo run --release --workspace --example uniq_probe -- COPY.duckdb
mod common;

use common::median;
use std::collections::BTreeMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: uniq_probe COPY.duckdb")?;
    let db = common::open_copy(&path)?;
    let conn = db.connect()?;
    let end: i64 = conn.query_row(
        "SELECT epoch_us(max(session_start)) // 86400000000 * 86400000000 FROM sessions WHERE site_id = 1",
        [],
        |r| r.get(0),
    )?;
    let start = end - 30 * 86_400_000_000;
    let visits = format!(
        "FROM sessions s WHERE s.site_id = 1 AND s.session_start >= CAST(make_timestamp({start}) AS TIMESTAMP_MS) \
         AND s.session_start < CAST(make_timestamp({end}) AS TIMESTAMP_MS)"
    );
    let pages = format!(
        "FROM events e JOIN sessions s USING (site_id, session_id) WHERE e.site_id = 1 \
         AND e.ts >= CAST(make_timestamp({start}) AS TIMESTAMP_MS) AND e.ts < CAST(make_timestamp({end}) AS TIMESTAMP_MS) \
         AND s.session_start >= CAST(make_timestamp({start} - 86400000000) AS TIMESTAMP_MS) AND e.name = 'pageview'"
    );
    let shapes = [
        ("ungrouped", String::new(), visits.clone()),
        ("total", "'all'".to_string(), visits.clone()),
        (
            "per day",
            "CAST(epoch_us(s.session_start) // 86400000000 AS VARCHAR)".to_string(),
            visits.clone(),
        ),
        ("browser", "s.browser".to_string(), visits.clone()),
        ("source", "s.source".to_string(), visits.clone()),
        ("entry page", "s.entry_page".to_string(), visits.clone()),
        ("country", "s.country".to_string(), visits.clone()),
        ("page", "e.pathname".to_string(), pages),
    ];
    for (label, key, from) in shapes {
        let run = |agg: &str| -> duckdb::Result<(f64, BTreeMap<String, i64>)> {
            let t = Instant::now();
            let sql = if key.is_empty() {
                format!("SELECT 'all' AS k, {agg} AS n {from}")
            } else {
                format!("SELECT {key} AS k, {agg} AS n {from} GROUP BY k")
            };
            let mut stmt = conn.prepare(&sql)?;
            let out = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<duckdb::Result<BTreeMap<_, _>>>()?;
            Ok((t.elapsed().as_secs_f64() * 1000.0, out))
        };
        let (mut exact_ms, mut uniq_ms) = (Vec::new(), Vec::new());
        let (mut exact, mut uniq) = (BTreeMap::new(), BTreeMap::new());
        for _ in 0..7 {
            let (ms, rows) = run("CAST(count(DISTINCT s.visitor_id) AS BIGINT)")?;
            exact_ms.push(ms);
            exact = rows;
            let (ms, rows) = run("ff_uniq(s.visitor_no)")?;
            uniq_ms.push(ms);
            uniq = rows;
        }
        if uniq != exact {
            return Err(format!("{label}: ff_uniq and count(DISTINCT) differ").into());
        }
        println!(
            "{label:>10}: count(DISTINCT) {:7.1} ms, ff_uniq {:7.1} ms ({} rows, equal)",
            median(exact_ms),
            median(uniq_ms),
            exact.len(),
        );
    }
    Ok(())
}
