-- Dense per-site visitor numbers (0, 1, 2, ... in first-seen order), so distinct visitors
-- are counted in bitmaps (`ff_uniq`, src/uniq.rs) instead of sets of 64-bit ids.
-- Every visit of a visitor has the same number; distinct visitors of a site have
-- distinct ones. The store writer numbers the visitors of each batch
-- (`sink::number_staged_visitors`); the data step numbers the visits already stored.
ALTER TABLE sessions ADD COLUMN visitor_no UINTEGER;
-- Per site, the number the next new visitor takes: numbers are never reused (an erased
-- visitor's stays free), and a batch needs no scan of every visit to find the largest.
CREATE TABLE visitor_counters (
    site_id         UINTEGER NOT NULL,
    next_no         UINTEGER NOT NULL
);
