-- One row per visit, recomputed from the visit's events in the same transaction that
-- stores a batch touching it (see sink.rs). Queries without event-level filters or
-- dimensions read visits from here instead of grouping events by session (~3.5x fewer
-- rows, no per-query GROUP BY session_id). Column names match `events` so the query
-- builder's expressions work on both.
CREATE TABLE IF NOT EXISTS sessions (
    site_id         UINTEGER NOT NULL,
    session_id      UBIGINT NOT NULL,
    visitor_id      UBIGINT NOT NULL,
    session_start   TIMESTAMP NOT NULL,     -- the visit's window key (events.session_start)
    first_ts        TIMESTAMP NOT NULL,     -- first event of any kind
    last_ts         TIMESTAMP NOT NULL,     -- last event of any kind (visit duration)
    last_hit_ts     TIMESTAMP NOT NULL,     -- last event that is not an engagement beacon
    pageviews       UINTEGER NOT NULL,
    hits            UINTEGER NOT NULL,      -- events other than engagement beacons
    interactive     UINTEGER NOT NULL,      -- interactive custom events (un-bounce a visit)
    entry_page      VARCHAR NOT NULL,
    entry_hostname  VARCHAR NOT NULL,
    exit_page       VARCHAR NOT NULL,
    exit_hostname   VARCHAR NOT NULL,
    referrer        VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    channel         VARCHAR NOT NULL,
    utm_source      VARCHAR NOT NULL,
    utm_medium      VARCHAR NOT NULL,
    utm_campaign    VARCHAR NOT NULL,
    utm_content     VARCHAR NOT NULL,
    utm_term        VARCHAR NOT NULL,
    device          VARCHAR NOT NULL,
    browser         VARCHAR NOT NULL,
    browser_version VARCHAR NOT NULL,
    os              VARCHAR NOT NULL,
    os_version      VARCHAR NOT NULL,
    country         VARCHAR NOT NULL,
    region          VARCHAR NOT NULL,
    city            UINTEGER NOT NULL,
    country_name    VARCHAR NOT NULL,
    region_name     VARCHAR NOT NULL,
    city_name       VARCHAR NOT NULL,
    org             VARCHAR NOT NULL
);
-- Filled from the events already stored by the data step of migration 3 (lib.rs).
