//! Experiment (not part of the server): how much of a distinct-visitor count is DuckDB's
//! hash aggregate. Counts the visitors per day of the last 30 days' visit rows of site 1
//! twice on a copy of a store: `count(DISTINCT visitor_id)` in DuckDB, and the same rows
//! fetched as Arrow batches and counted in Rust (one hash set per day). Prints the median
//! of 7 runs of each (and of the fetch alone) and checks that the counts agree.
//!
//! usage: cargo run --release --workspace --example distinct_probe -- COPY.duckdb
use duckdb::arrow::array::{Array, Int64Array, UInt64Array};
mod common;

use common::median;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

type Counts = BTreeMap<i64, u64>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: distinct_probe COPY.duckdb")?;
    let db = common::open_copy(&path)?;
    let conn = db.connect()?;
    let end: i64 = conn.query_row(
        "SELECT epoch_us(max(session_start)) // 86400000000 * 86400000000 FROM sessions WHERE site_id = 1",
        [],
        |r| r.get(0),
    )?;
    let start = end - 30 * 86_400_000_000;
    let rows = format!(
        "FROM sessions e WHERE e.site_id = 1 AND e.session_start >= CAST(make_timestamp({start}) AS TIMESTAMP_MS) \
         AND e.session_start < CAST(make_timestamp({end}) AS TIMESTAMP_MS) AND e.last_ts < CAST(make_timestamp({end}) AS TIMESTAMP_MS) \
         AND date_trunc('day', e.session_start) = date_trunc('day', e.last_ts)"
    );
    let day = "epoch_us(e.session_start) // 86400000000";
    // The (day, visitor) rows themselves, for the Rust count and the fetch alone.
    let pairs = format!("SELECT {day} AS d, e.visitor_id {rows}");

    let in_duckdb = || -> duckdb::Result<Counts> {
        let mut stmt = conn.prepare(&format!(
            "SELECT {day} AS d, count(DISTINCT visitor_id) {rows} GROUP BY d"
        ))?;
        let out = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?)))?
            .collect::<duckdb::Result<Counts>>()?;
        Ok(out)
    };
    let in_rust = || -> Result<Counts, Box<dyn std::error::Error>> {
        let mut stmt = conn.prepare(&pairs)?;
        let mut sets: HashMap<i64, HashSet<u64, foldhash::fast::RandomState>> = HashMap::new();
        for batch in stmt.query_arrow([])? {
            let days = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or("day column is not BIGINT")?;
            let visitors = batch
                .column(1)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or("visitor column is not UBIGINT")?;
            for i in 0..batch.num_rows() {
                if days.is_valid(i) {
                    sets.entry(days.value(i))
                        .or_default()
                        .insert(visitors.value(i));
                }
            }
        }
        Ok(sets.into_iter().map(|(d, s)| (d, s.len() as u64)).collect())
    };

    // The fetch alone: the same batches, only summed.
    let fetch_only = || -> Result<u64, Box<dyn std::error::Error>> {
        let mut stmt = conn.prepare(&pairs)?;
        let mut sum = 0u64;
        for batch in stmt.query_arrow([])? {
            let visitors = batch
                .column(1)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or("visitor column is not UBIGINT")?;
            sum = visitors
                .values()
                .iter()
                .fold(sum, |a, v| a.wrapping_add(*v));
        }
        Ok(sum)
    };
    let (mut t_duck, mut t_rust, mut t_fetch) = (Vec::new(), Vec::new(), Vec::new());
    let (mut a, mut b) = (Counts::new(), Counts::new());
    for _ in 0..7 {
        let t = Instant::now();
        a = in_duckdb()?;
        t_duck.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        b = in_rust()?;
        t_rust.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(fetch_only()?);
        t_fetch.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let visits: u64 = conn.query_row(&format!("SELECT count(*) {rows}"), [], |r| r.get(0))?;
    println!(
        "{visits} visit rows, {} days: DuckDB count(DISTINCT) {:.1} ms, Arrow + Rust hash sets {:.1} ms \
         (of which the Arrow fetch {:.1} ms); counts {}",
        a.len(),
        median(t_duck),
        median(t_rust),
        median(t_fetch),
        if a == b { "agree" } else { "DIFFER" }
    );
    Ok(())
}
