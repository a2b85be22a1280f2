-- ehrqa schema, SQLite dialect. The raw resource is the source of truth; everything else is
-- derived from it and can be rebuilt.

-- One row per resource: the raw JSON as received (canonicalised) and the normalised record
-- derived from it (src/fhir/record.rs), side by side so an ingest writes one row, not two.
CREATE TABLE resources (
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    patient_id   TEXT,
    full_url     TEXT,
    version_id   TEXT,
    last_updated INTEGER,
    hash         TEXT    NOT NULL,
    raw          TEXT    NOT NULL,
    ingest_id    INTEGER NOT NULL,
    -- The normalised record: its date (as rendered, and as a UTC timestamp), status, main code,
    -- one-line rendering, the whole record as JSON, and how many references the resource has.
    date         TEXT,
    ts           INTEGER,
    status       TEXT,
    code         TEXT,
    text         TEXT    NOT NULL,
    record       TEXT    NOT NULL,
    refs         INTEGER NOT NULL,
    -- Tokens of `text` under the model's tokenizer (NULL when ingested without one).
    tokens       INTEGER,
    PRIMARY KEY (type, id)
);
-- By id alone: existing-version lookups, and `urn:uuid:<id>` references across inputs.
CREATE INDEX resources_id ON resources (id);
CREATE INDEX resources_patient ON resources (patient_id, type, ts);

-- The normalised side, for readers that want records only.
CREATE VIEW records AS
    SELECT type, id, patient_id, date, ts, status, code, text, record, refs, tokens FROM resources;

CREATE TABLE patients (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    birth_date TEXT,
    gender     TEXT,
    deceased   TEXT
);

-- References that could not be resolved inside their own input (a bundle, an NDJSON file):
-- they wait here until their target arrives, whatever the order of inputs. References resolved
-- inside their input point at a resource of that same input, stored with it; `resources.full_url`
-- keeps the mapping of bundle-local `urn:uuid:` references.
CREATE TABLE refs (
    src_type    TEXT    NOT NULL,
    src_id      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    raw         TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    resolved    INTEGER NOT NULL,
    cond_system TEXT,
    cond_value  TEXT,
    ingest_id   INTEGER NOT NULL
);
CREATE INDEX refs_src ON refs (src_type, src_id);
CREATE INDEX refs_pending ON refs (kind) WHERE resolved = 0;

CREATE TABLE identifiers (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    system        TEXT,
    value         TEXT NOT NULL
);
CREATE INDEX identifiers_lookup ON identifiers (resource_type, value);
CREATE INDEX identifiers_owner ON identifiers (resource_type, resource_id);

-- Attachments: notes are decoded into records.record; everything is described here.
CREATE TABLE attachments (
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    content_type  TEXT,
    title         TEXT,
    size          INTEGER NOT NULL,
    sha256        TEXT,
    url           TEXT,
    is_text       INTEGER NOT NULL
);
CREATE INDEX attachments_owner ON attachments (resource_type, resource_id);

-- One row per committed input; its id orders ingests and tags the index commit.
CREATE TABLE ingests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    sha256      TEXT,
    finished_at TEXT    NOT NULL,
    resources   INTEGER NOT NULL,
    inserted    INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    stale       INTEGER NOT NULL,
    unresolved  INTEGER NOT NULL,
    by_type     TEXT    NOT NULL
);
