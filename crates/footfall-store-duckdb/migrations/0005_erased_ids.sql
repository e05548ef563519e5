-- Client event ids of erased events (GDPR erase). The de-dup set is rebuilt at start-up
-- from the stored events' ids, so without these a re-sent batch would store an erased
-- visitor's events again after a restart: re-sent ids are never stored twice.
CREATE TABLE IF NOT EXISTS erased_event_ids (
    site_id         UINTEGER NOT NULL,
    event_id        UBIGINT NOT NULL
);
