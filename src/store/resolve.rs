//! Resolving references across inputs, inside the writing transaction.
//!
//! Only references that their own input could not resolve are stored in `refs`. After each input
//! is written, every pending reference in the store (from this input or an
//! earlier one) is matched against what the store now holds: literal `Type/id` by existence,
//! `urn:uuid:` by fullUrl, conditional references by identifier. The partial index
//! `refs_pending` keeps this proportional to what is still unresolved, not to the store's size.

use super::backend::{on, Conn};
use super::StoreError;

const PASSES: [&str; 3] = [
    "UPDATE refs SET resolved = 1 \
     WHERE resolved = 0 AND kind = 'literal' AND EXISTS \
       (SELECT 1 FROM resources r WHERE r.type = refs.target_type AND r.id = refs.target_id)",
    // A `urn:uuid:` fullUrl is bundle-local by the spec; across inputs it can only mean the
    // resource that was stored under that fullUrl, whose id Synthea and most producers make the
    // uuid itself.
    "UPDATE refs SET \
       target_type = (SELECT r.type FROM resources r \
          WHERE r.id = substr(refs.raw, 10) AND r.full_url = refs.raw LIMIT 1), \
       target_id = substr(refs.raw, 10), \
       resolved = 1 \
     WHERE resolved = 0 AND kind = 'urn' AND EXISTS \
       (SELECT 1 FROM resources r WHERE r.id = substr(refs.raw, 10) AND r.full_url = refs.raw)",
    "UPDATE refs SET \
       target_id = (SELECT i.resource_id FROM identifiers i \
          WHERE i.resource_type = refs.target_type AND i.value = refs.cond_value \
            AND (refs.cond_system IS NULL OR i.system = refs.cond_system) LIMIT 1), \
       resolved = 1 \
     WHERE resolved = 0 AND kind = 'conditional' AND EXISTS \
       (SELECT 1 FROM identifiers i WHERE i.resource_type = refs.target_type \
          AND i.value = refs.cond_value \
          AND (refs.cond_system IS NULL OR i.system = refs.cond_system))",
];

pub async fn run(mut conn: Conn<'_>) -> Result<(), StoreError> {
    for sql in PASSES {
        on!(conn.again(), |c| {
            sqlx::query(sql).execute(&mut *c).await?;
        });
    }
    Ok(())
}
