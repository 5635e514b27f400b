-- The audit log (docs/security.md): one row per entity type and operation of each write
-- transaction, written in that transaction (a rolled-back write leaves none). Bulk
-- inserts of Observations are one row with their count and Datastreams, not one per
-- Observation. No foreign keys: a row outlives the organisation or key it names.
-- at: microseconds since 1970 (UTC), as every time in this store; ids and detail hold
-- JSON text.

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    identity TEXT NOT NULL,
    org_id INTEGER,
    organisation TEXT,
    role TEXT NOT NULL,
    transport TEXT NOT NULL,
    operation TEXT NOT NULL,
    entity TEXT NOT NULL,
    ids TEXT,
    count INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_identity ON audit_log (identity, at);
