//! Resolving references across inputs, inside the writing transaction.
//!
//! Only references that their own input could not resolve are stored in `refs`. After each input
//! is written, what can newly resolve is matched: literal `Type/id` by existence, `urn:uuid:` by
//! fullUrl, conditional references by identifier. Only the input just written changes what the
//! store holds, so two statements per kind cover everything:
//! - the input's own pending references, against the whole store;
//! - the earlier inputs' pending references, against the input's own resources.
//!
//! Each is driven by a partial index of pending references (migration `0010_pending_refs`;
//! PostgreSQL's `0004`), so an input costs what it brings, not what is still pending: matching
//! every pending reference after every input grew with the square of the inputs on a Java
//! Synthea directory, whose practitioners and organisations arrive last (a tenth of its ingest).

use std::sync::LazyLock;

use super::backend::{on, Conn};
use super::StoreError;

/// How a pending reference of each kind is marked resolved, given the rows it applies to.
const LITERAL: &str = "UPDATE refs SET resolved = 1 WHERE resolved = 0 AND kind = 'literal' AND ";
const LITERAL_FOUND: &str =
    "EXISTS (SELECT 1 FROM resources r WHERE r.type = refs.target_type AND r.id = refs.target_id)";
const LITERAL_NEW: &str = "(target_type, target_id) IN (SELECT type, id FROM resources WHERE ingest_id = $1)";

// A `urn:uuid:` fullUrl is bundle-local by the spec; across inputs it can only mean the resource
// that was stored under that fullUrl, whose id Synthea and most producers make the uuid itself.
const URN: &str = "UPDATE refs SET \
       target_type = (SELECT r.type FROM resources r \
          WHERE r.id = substr(refs.raw, 10) AND r.full_url = refs.raw LIMIT 1), \
       target_id = substr(refs.raw, 10), \
       resolved = 1 \
     WHERE resolved = 0 AND kind = 'urn' AND ";
const URN_FOUND: &str =
    "EXISTS (SELECT 1 FROM resources r WHERE r.id = substr(refs.raw, 10) AND r.full_url = refs.raw)";
const URN_NEW: &str = "raw IN (SELECT full_url FROM resources WHERE ingest_id = $1 AND full_url IS NOT NULL)";

const CONDITIONAL: &str = "UPDATE refs SET \
       target_id = (SELECT i.resource_id FROM identifiers i \
          WHERE i.resource_type = refs.target_type AND i.value = refs.cond_value \
            AND (refs.cond_system IS NULL OR i.system = refs.cond_system) LIMIT 1), \
       resolved = 1 \
     WHERE resolved = 0 AND kind = 'conditional' AND ";
const CONDITIONAL_FOUND: &str =
    "EXISTS (SELECT 1 FROM identifiers i WHERE i.resource_type = refs.target_type \
          AND i.value = refs.cond_value \
          AND (refs.cond_system IS NULL OR i.system = refs.cond_system))";
const CONDITIONAL_NEW: &str = "(target_type, cond_value) IN (SELECT i.resource_type, i.value \
          FROM identifiers i JOIN resources r ON r.type = i.resource_type AND r.id = i.resource_id \
          WHERE r.ingest_id = $1)";

/// The input's own pending references, of the kind `head` updates, that the store resolves.
fn own(head: &str, found: &str) -> String {
    format!("{head}ingest_id = $1 AND {found}")
}

/// Earlier inputs' pending references, of the kind `head` updates, that input `$1` resolves.
fn earlier(head: &str, new: &str, found: &str) -> String {
    format!("{head}{new} AND {found}")
}

/// The statements, in order, composed once; each binds the input's ingest id as `$1`.
static STATEMENTS: LazyLock<[String; 6]> = LazyLock::new(|| {
    [
        own(LITERAL, LITERAL_FOUND),
        earlier(LITERAL, LITERAL_NEW, LITERAL_FOUND),
        own(URN, URN_FOUND),
        earlier(URN, URN_NEW, URN_FOUND),
        own(CONDITIONAL, CONDITIONAL_FOUND),
        earlier(CONDITIONAL, CONDITIONAL_NEW, CONDITIONAL_FOUND),
    ]
});

/// Resolves what input `ingest_id`, just written in this transaction, makes resolvable.
pub async fn run(mut conn: Conn<'_>, ingest_id: i64) -> Result<(), StoreError> {
    for sql in STATEMENTS.iter() {
        on!(conn.again(), |c| {
            sqlx::query(sql).bind(ingest_id).execute(&mut *c).await?;
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::STATEMENTS;

    /// No statement walks the pending references: each finds its rows through an index.
    #[tokio::test]
    async fn every_statement_searches_an_index_of_pending_references() {
        for sql in STATEMENTS.iter() {
            let plan = crate::store::query_plan(sql).await;
            let refs = plan.iter().find(|s| s.contains(" refs ")).map_or("", String::as_str);
            let searched = refs.starts_with("SEARCH refs USING ") && refs.contains("INDEX refs_pending_");
            assert!(searched, "{sql}\n{plan:?}");
        }
    }
}
