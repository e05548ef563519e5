//! Experiment helper (not part of the server): times SQL statements on a copy of a store
//! with footfall's functions (`ff_uniq`) registered. Prints the median of 7 runs of each
//! statement, alternating, and its first row.
//!
//! usage: cargo run --release --workspace --example sql_time -- COPY.duckdb 'SQL' ['SQL' ...]
mod common;

use common::median;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: sql_time COPY.duckdb SQL...")?;
    let statements: Vec<String> = args.collect();
    let db = common::open_copy(&path)?;
    let conn = db.connect()?;
    let mut times = vec![Vec::new(); statements.len()];
    let mut first = vec![String::new(); statements.len()];
    for _ in 0..7 {
        for (i, sql) in statements.iter().enumerate() {
            let t = Instant::now();
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query([])?;
            let mut n = 0;
            while let Some(row) = rows.next()? {
                if n == 0 {
                    first[i] = format!("{:?}", row.get::<_, duckdb::types::Value>(0)?);
                }
                n += 1;
            }
            times[i].push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for (i, t) in times.into_iter().enumerate() {
        println!(
            "{:8.1} ms  {}  {}",
            median(t),
            first[i],
            &statements[i][..statements[i].len().min(90)]
        );
    }
    Ok(())
}
