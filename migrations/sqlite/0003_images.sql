-- Image (and PDF) attachments: the original bytes, a normalised RGB PNG, and their transcription.
-- Written with the resource in the same transaction; transcribed later, in the background.
CREATE TABLE images (
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    patient_id    TEXT,
    content_type  TEXT,
    format        TEXT,
    width         INTEGER,
    height        INTEGER,
    sha256        TEXT    NOT NULL,
    original      BLOB    NOT NULL,
    normalised    BLOB,
    -- pending (waiting for transcription), transcribed, stored (PDF), refused, failed
    status        TEXT    NOT NULL,
    reason        TEXT,
    transcript    TEXT,
    transcriber   TEXT,
    PRIMARY KEY (resource_type, resource_id, path)
);
CREATE INDEX images_status ON images (status);
