-- footfall embedded schema, version 1.
-- Timestamps are UTC (TIMESTAMP = microseconds, no zone). Site-local bucketing is done by the
-- query builder with offsets computed in Rust (no ICU extension needed).

CREATE TABLE IF NOT EXISTS sites (
    id              UINTEGER PRIMARY KEY,
    domain          VARCHAR NOT NULL UNIQUE,
    timezone        VARCHAR NOT NULL DEFAULT 'UTC',
    identity_mode   VARCHAR NOT NULL DEFAULT 'cookieless',  -- cookieless | cookie
    session_timeout_secs UINTEGER NOT NULL DEFAULT 1800,
    allowed_hostnames VARCHAR NOT NULL DEFAULT '',          -- comma separated; empty = domain and subdomains
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id              UINTEGER PRIMARY KEY,
    site_id         UINTEGER NOT NULL,
    scope           VARCHAR NOT NULL,       -- ingest | stats
    name            VARCHAR NOT NULL DEFAULT '',
    prefix          VARCHAR NOT NULL,       -- first characters, for listing
    key_hash        VARCHAR NOT NULL UNIQUE, -- hex sha-256 of the whole key
    created_at      TIMESTAMP NOT NULL,
    revoked_at      TIMESTAMP,
    usage_count     UBIGINT NOT NULL DEFAULT 0,
    last_used_at    TIMESTAMP
);

CREATE TABLE IF NOT EXISTS goals (
    id              UINTEGER PRIMARY KEY,
    site_id         UINTEGER NOT NULL,
    kind            VARCHAR NOT NULL,       -- page | event
    pattern         VARCHAR NOT NULL,       -- page path pattern ('*' wildcard) or event name
    display_name    VARCHAR NOT NULL        -- 'Visit /path*' or the event name
);

CREATE TABLE IF NOT EXISTS salts (
    day             DATE PRIMARY KEY,       -- UTC day the salt is valid for
    salt            BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS drop_counts (
    site_id         UINTEGER NOT NULL,
    reason          VARCHAR NOT NULL,
    count           UBIGINT NOT NULL,
    PRIMARY KEY (site_id, reason)
);

-- WAL position applied to the event tables (one row).
CREATE TABLE IF NOT EXISTS wal_checkpoint (
    id              UTINYINT PRIMARY KEY,
    lsn             UBIGINT NOT NULL
);

-- One row per stored event. Visit attributes (entry page, source, UTM, device, location)
-- are the session's first event's, copied onto every event of the session so that visit
-- filters and breakdowns need no join (Plausible's session_* columns do the same).
CREATE TABLE IF NOT EXISTS events (
    site_id         UINTEGER NOT NULL,
    ts              TIMESTAMP NOT NULL,
    event_id        UBIGINT NOT NULL,
    client_id       BOOLEAN NOT NULL,       -- event_id derives from a client-given id (dedup)
    visitor_id      UBIGINT NOT NULL,
    session_id      UBIGINT NOT NULL,
    session_start   TIMESTAMP NOT NULL,     -- ts of the session's first event
    name            VARCHAR NOT NULL,       -- 'pageview' | 'engagement' | custom name
    interactive     BOOLEAN NOT NULL,
    hostname        VARCHAR NOT NULL,
    pathname        VARCHAR NOT NULL,
    title           VARCHAR NOT NULL,
    engagement_ms   UINTEGER NOT NULL,      -- engagement events only, else 0
    scroll_depth    UTINYINT,               -- engagement events only, NULL = unknown
    revenue_amount  DOUBLE,
    revenue_currency VARCHAR,
    has_props       BOOLEAN NOT NULL,       -- rows exist in event_props
    -- visit:* attributes
    entry_page      VARCHAR NOT NULL,
    entry_hostname  VARCHAR NOT NULL,
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
    country         VARCHAR NOT NULL,       -- ISO alpha-2, '' unknown
    region          VARCHAR NOT NULL,       -- ISO 3166-2, '' unknown
    city            UINTEGER NOT NULL,      -- GeoName id, 0 unknown
    country_name    VARCHAR NOT NULL,
    region_name     VARCHAR NOT NULL,
    city_name       VARCHAR NOT NULL,
    org             VARCHAR NOT NULL
);

-- Custom properties, one row per (event, key). Joined on (site_id, event_id) only when a
-- query names event:props:*.
CREATE TABLE IF NOT EXISTS event_props (
    site_id         UINTEGER NOT NULL,
    event_id        UBIGINT NOT NULL,
    key             VARCHAR NOT NULL,
    value           VARCHAR NOT NULL
);
