-- Version 8: event and visit times to the millisecond (TIMESTAMP_MS) instead of the
-- microsecond. DuckDB bit-packs a column's differences from a frame of reference; a
-- microsecond timestamp spends ten bits a row on digits below the millisecond that no
-- client sends and no metric reads (visit durations and time on page are reported in
-- whole seconds). At 10M events the three columns took ~61 MiB, now ~41 (~2 B/event,
-- BENCHMARKS.md §4). Queries compare them with TIMESTAMP_MS constants (lib.rs
-- `ts_param!`): against a TIMESTAMP constant DuckDB would cast every row and lose the
-- zone-map pruning of the time range. Writers truncate times to the millisecond
-- (footfall_core::event::stored_time_us).
-- Truncated, as writers do (DuckDB's cast rounds: 23:59:59.9996 would move to the next day).
ALTER TABLE events ALTER ts TYPE TIMESTAMP_MS
    USING make_timestamp(epoch_us(ts) - ((epoch_us(ts) % 1000) + 1000) % 1000);
ALTER TABLE sessions ALTER session_start TYPE TIMESTAMP_MS
    USING make_timestamp(epoch_us(session_start) - ((epoch_us(session_start) % 1000) + 1000) % 1000);
ALTER TABLE sessions ALTER last_ts TYPE TIMESTAMP_MS
    USING make_timestamp(epoch_us(last_ts) - ((epoch_us(last_ts) % 1000) + 1000) % 1000);
