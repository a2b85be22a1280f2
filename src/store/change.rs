//! Deciding what an incoming resource does to the store: insert, replace, nothing, or nothing
//! because the stored version is newer.

use std::collections::BTreeMap;

use crate::fhir::PreparedResource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    Updated,
    Unchanged,
    /// The store holds a newer version; the incoming one is ignored.
    Stale,
}

/// What the store holds of a resource, enough to decide.
#[derive(Debug, Clone)]
pub struct Existing {
    pub hash: String,
    pub version_id: Option<String>,
    pub last_updated: Option<i64>,
    /// The patient the stored resource belongs to.
    pub patient: Option<String>,
}

/// Same hash: unchanged. Otherwise the incoming version replaces the stored one unless its
/// `meta.versionId` (numeric) or `meta.lastUpdated` says it is older.
pub fn decide(existing: Option<&Existing>, incoming: &PreparedResource) -> Change {
    let Some(e) = existing else {
        return Change::New;
    };
    if e.hash == incoming.hash {
        return Change::Unchanged;
    }
    let version = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<u64>().ok());
    let older = match (version(&incoming.version_id), version(&e.version_id)) {
        (Some(a), Some(b)) => a < b,
        _ => matches!((incoming.last_updated, e.last_updated), (Some(a), Some(b)) if a < b),
    };
    if older {
        Change::Stale
    } else {
        Change::Updated
    }
}

/// What staging one input did: wrote it, or refused it before writing anything.
#[derive(Debug)]
pub enum Staged {
    Written(WriteOutcome),
    /// Storing the input would merge two people (see `identity.rs`); the reason says how.
    Refused(String),
}

/// The result of writing one input.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteOutcome {
    pub ingest_id: i64,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub stale: usize,
    /// References of this input whose target is still unknown after resolution.
    pub unresolved: usize,
    /// Resources per type in the input.
    pub by_type: BTreeMap<String, usize>,
    /// What happened to each resource of the input, in the input's order (for the index: a
    /// new resource is added, a replaced one replaces its document).
    #[serde(skip)]
    pub changes: Vec<Change>,
    /// Stored records (of this input or earlier ones) that joined their patient's compartment
    /// when this input resolved their patient reference (`adopt`): the index replaces them.
    #[serde(skip)]
    pub adopted: Vec<super::adopt::Adopted>,
}
