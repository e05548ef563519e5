-- Version 10: each event's kind as a small number beside its name: 0 a page view, 1 an
-- engagement beacon, 2 a custom event (lib.rs `KIND_*`). Nearly every event query keeps
-- or drops rows by kind (hits leave out engagement, the page breakdown reads page views),
-- and DuckDB compared the dictionary-compressed name string on every row: a 30-day scan
-- at 10M events with `name <> 'engagement'` took 28.1 ms against 20.5 with `kind <> 1`
-- and 17.0 with neither (Python duckdb). Two bits a row bit-packed (~0.35 B/event,
-- BENCHMARKS.md §4). The name stays the record (goals, custom event names, the store
-- writer's rollup); the data step (lib.rs) sets the kinds of stored events.
ALTER TABLE events ADD COLUMN kind UTINYINT;
