-- Resources by the ingest that last wrote them: a process that finds the search index behind
-- the database (another process crashed between its two commits) indexes only what came after
-- the index's tag instead of rebuilding everything.
CREATE INDEX resources_ingest ON resources (ingest_id);
