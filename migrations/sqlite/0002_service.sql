-- Who asked what about which patient, and when (the REST API). Questions are kept here, in the
-- database, never in logs; answers are not kept at all.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,
    key_name TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    patient  TEXT,
    detail   TEXT
);
CREATE INDEX audit_patient ON audit (patient, ts);

-- The last successful sync per FHIR server and patient, for incremental syncs (`_since`).
CREATE TABLE sync_state (
    server    TEXT    NOT NULL,
    patient   TEXT    NOT NULL,
    synced_at TEXT    NOT NULL,
    PRIMARY KEY (server, patient)
);
