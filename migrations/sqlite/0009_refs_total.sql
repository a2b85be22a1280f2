-- How many references the store holds (`SUM(refs)`, in every ingest's report), read from this
-- index alone. Without it the sum read every resource row, and `refs` lies after the row's
-- JSON, so each read followed the row's overflow pages: 0.1 s after ingesting the shared data,
-- 0.2-0.5 s after the notes-heavy set, spent once the ingest was done. PostgreSQL keeps the
-- JSON out of line (TOAST), so its scan reads the small rows only and needs no such index.
CREATE INDEX resources_refs ON resources (refs);
