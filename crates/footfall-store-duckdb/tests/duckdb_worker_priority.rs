//! DuckDB's worker threads, which run Stats API queries, keep normal priority after the
//! niced store writer has stored a batch (the writer holds DuckDB to one thread during a
//! batch, and DuckDB launches workers on the thread that raises the count back).
//!
//! Its own test binary: it reads every thread of the process (`/proc/self/task`), so no
//! other test's store may run beside it.

#[cfg(target_os = "linux")]
#[tokio::test]
async fn duckdb_workers_are_not_niced_by_the_store_writer() {
    use footfall_core::{Event, VisitAttrs};
    use footfall_store::EventSink;
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = footfall_store_duckdb::DuckStore::open(
        &dir.path().join("footfall.duckdb"),
        &footfall_store_duckdb::DuckConfig::default(),
    )
    .expect("store");
    let visit = Some(Arc::new(VisitAttrs {
        entry_page: "/".into(),
        ..VisitAttrs::default()
    }));
    for batch in 0..3u64 {
        let events = (0..100u64)
            .map(|i| Event {
                site_id: 1,
                ts_us: 1_710_028_800_000_000 + i64::try_from(batch * 100 + i).expect("small"),
                event_id: batch * 1000 + i,
                visitor_id: batch * 1000 + i,
                session_id: batch * 1000 + i,
                name: "pageview".into(),
                pathname: "/".into(),
                hostname: "example.com".into(),
                visit: visit.clone(),
                ..Event::default()
            })
            .collect();
        store
            .append(Arc::new(events), batch + 1)
            .await
            .expect("stored");
    }

    // (name, nice) of every thread of the process: `stat`'s 19th field is the nice value,
    // counted after the command name's closing parenthesis (names may hold spaces).
    let threads: Vec<(String, i64)> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            let after_name = stat.rsplit_once(')')?.1;
            let nice = after_name.split_whitespace().nth(16)?.parse().ok()?;
            Some((name.trim().to_string(), nice))
        })
        .collect();
    let niced: Vec<&(String, i64)> = threads.iter().filter(|(_, nice)| *nice > 0).collect();
    // The writer itself runs niced (when the system let it lower its priority), and it is
    // the only one: a worker DuckDB launched from it would carry its name and its nice.
    assert!(
        niced.len() <= 1 && niced.iter().all(|(name, _)| name == "footfall-store"),
        "niced threads besides the store writer: {threads:?}"
    );
    assert!(
        threads.iter().any(|(name, _)| name == "footfall-duckdb"),
        "no thread set DuckDB's count: {threads:?}"
    );
}
