-- Pending references by what resolves them (`store/resolve.rs`): an input's own by its ingest,
-- and earlier inputs' by the target a new input may bring, so resolving after each input costs
-- what the input brings instead of a pass over everything still pending. The index by kind
-- alone goes: the query planner preferred it, and walked every pending reference of a kind.
DROP INDEX refs_pending;
CREATE INDEX refs_pending_ingest ON refs (ingest_id, kind) WHERE resolved = 0;
CREATE INDEX refs_pending_literal ON refs (target_type, target_id) WHERE resolved = 0 AND kind = 'literal';
CREATE INDEX refs_pending_urn ON refs (raw) WHERE resolved = 0 AND kind = 'urn';
CREATE INDEX refs_pending_conditional ON refs (target_type, cond_value) WHERE resolved = 0 AND kind = 'conditional';
