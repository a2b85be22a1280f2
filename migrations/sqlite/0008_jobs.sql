-- Background jobs (syncs started over the API) and their progress, kept in the database so
-- that whichever process answers `GET /v1/jobs/{id}` knows the job, whichever one runs it.
-- `owner` is the hash of the key that started it (hex): only that key may read it.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    owner          TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    patients_total INTEGER NOT NULL,
    patients_done  INTEGER NOT NULL,
    report         TEXT,
    error          TEXT,
    started_at     INTEGER NOT NULL
);
