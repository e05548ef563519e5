-- Version 9: each event carries its visit's visitor number (`sessions.visitor_no`, 0007).
-- Event queries that need only the visitor (a page breakdown, a goal's visitors) counted
-- visitors by joining every event of the range to its visit for this one number: at 10M
-- events the 30-day page breakdown spent ~40 of its ~110 ms in that join. A visit's events
-- sit together (0004), so the number compresses to one run per visit: ~1.5 B/event
-- (BENCHMARKS.md §4). The store writer numbers a batch's visits before appending its events;
-- the data step (lib.rs) numbers the stored ones.
ALTER TABLE events ADD COLUMN visitor_no UINTEGER;
