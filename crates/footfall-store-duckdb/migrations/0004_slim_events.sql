-- Version 4: ~30 bytes per event (DESIGN §8).
-- `events` keeps only what differs between the events of a visit; the visitor, the visit
-- attributes and the window key session_start live once per visit in `sessions`, and
-- event queries that need them join on (site_id, session_id). Events are stored clustered by
-- visit ((site_id, session_id, ts) within each write batch; the migration rewrites old
-- rows in that order): a visit's session id then compresses to a run and its timestamps
-- to a narrow range. The rows are copied by the data step (lib.rs), in slices.
CREATE TABLE events_v4 (
    site_id         UINTEGER NOT NULL,
    ts              TIMESTAMP NOT NULL,
    event_id        UBIGINT NOT NULL,
    client_id       BOOLEAN NOT NULL,       -- event_id derives from a client-given id (dedup)
    session_id      UBIGINT NOT NULL,       -- its visit: sessions (site_id, session_id)
    name            VARCHAR NOT NULL,       -- 'pageview' | 'engagement' | custom name
    interactive     BOOLEAN NOT NULL,
    hostname        VARCHAR NOT NULL,
    pathname        VARCHAR NOT NULL,
    title           VARCHAR NOT NULL,
    engagement_ms   UINTEGER NOT NULL,      -- engagement events only, else 0
    scroll_depth    UTINYINT,               -- engagement events only, NULL = unknown
    revenue_amount  DOUBLE,
    revenue_currency VARCHAR,
    has_props       BOOLEAN NOT NULL        -- rows exist in event_props
);

-- One row per visit, recomputed from its events (and the visit attributes the writer
-- was given) whenever a batch touches it. session_start is the visit's first event
-- time: the window key ("a visit belongs to the range of its first event") and the start
-- of its duration. Column names match the visit:* dimensions.
CREATE TABLE sessions_v4 (
    site_id         UINTEGER NOT NULL,
    session_id      UBIGINT NOT NULL,
    visitor_id      UBIGINT NOT NULL,
    session_start   TIMESTAMP NOT NULL,     -- first event of any kind
    last_ts         TIMESTAMP NOT NULL,     -- last event of any kind (visit duration)
    pageviews       UINTEGER NOT NULL,
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
    country         VARCHAR NOT NULL,       -- ISO alpha-2, '' unknown
    region          VARCHAR NOT NULL,       -- ISO 3166-2, '' unknown
    city            UINTEGER NOT NULL,      -- GeoName id, 0 unknown
    country_name    VARCHAR NOT NULL,
    region_name     VARCHAR NOT NULL,
    city_name       VARCHAR NOT NULL,
    org             VARCHAR NOT NULL,
    label           VARCHAR NOT NULL
);
