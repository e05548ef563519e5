-- Visitor classification (visit:label): the label of the visit, decided when it starts,
-- on every event (like the other visit attributes) and on its sessions row.
ALTER TABLE events ADD COLUMN label VARCHAR DEFAULT '';
ALTER TABLE sessions ADD COLUMN label VARCHAR DEFAULT '';

-- Label rules set through the API, per site, as the JSON array the API takes.
CREATE TABLE IF NOT EXISTS label_rules (
    site_id         UINTEGER PRIMARY KEY,
    rules           VARCHAR NOT NULL
);
