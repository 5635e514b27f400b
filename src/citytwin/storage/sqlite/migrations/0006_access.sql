-- Access control (docs/security.md): organisations, API keys (only the SHA-256 digest of
-- each key is stored) and the organisation owning each Thing. Locations and
-- FeaturesOfInterest remember the organisation that created them, so that they stay
-- readable to it before anything links them to its data.

CREATE TABLE organisations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash TEXT NOT NULL UNIQUE,
    org_id INTEGER REFERENCES organisations (id),
    role TEXT NOT NULL,
    thing_id INTEGER, -- a household key's Thing (no foreign key: a deleted Thing opens nothing)
    name TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

ALTER TABLE things ADD COLUMN org_id INTEGER REFERENCES organisations (id);
ALTER TABLE locations ADD COLUMN org_id INTEGER REFERENCES organisations (id);
ALTER TABLE features ADD COLUMN org_id INTEGER REFERENCES organisations (id);
CREATE INDEX things_org ON things (org_id);
CREATE INDEX locations_org ON locations (org_id);
CREATE INDEX features_org ON features (org_id);
