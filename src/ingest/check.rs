//! `ehrqa check`: does the data directory hold what its writers promised, after whatever
//! happened to them (a crash, SIGKILL, a full disk)?
//!
//! - the database passes its integrity check (SQLite's own, PostgreSQL's `amcheck` where
//!   installed; `store::check` says when none ran), and no queued work (images waiting for
//!   transcription, references waiting for their target) points at a missing resource;
//! - the index is in step with the database (the same documents as stored resources), or behind
//!   it: the database is the source of truth and the next writer, or `ehrqa serve`, indexes what
//!   is missing. An index ahead of the database, or in step with other documents, is a failure;
//! - given the inputs that were being ingested, each is whole (recorded, every resource present)
//!   or absent (not recorded, none of its resources present unless another recorded input has
//!   them): never half-stored.
//!
//! It only reads. Run it when no other process writes (it says so if one does).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;

use super::{load_file, IngestError, Workspace};
use crate::fhir::Threads;
use crate::store::DatabaseCheck;

/// Everything `ehrqa check` found (a JSON contract of `ehrqa check --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub problems: Vec<String>,
    /// The process holding the data directory's write lock while checking, if any.
    pub writer_active: Option<u32>,
    pub database: DatabaseCheck,
    pub index: IndexCheck,
    pub inputs: Vec<InputCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexCheck {
    /// The database's last ingest, and the one the index's last commit is tagged with.
    pub database_ingest: i64,
    pub index_ingest: i64,
    /// `in_step`, `behind` (repaired by the next writer) or `ahead` (a failure).
    pub state: &'static str,
    pub documents: usize,
    /// Stored resources the index lacks (only a problem when in step).
    pub missing: usize,
    /// Index documents with no stored resource (always a problem).
    pub extra: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputCheck {
    pub source: String,
    /// `whole`, `absent`, `partial` (a failure) or `unreadable` (refused input: nothing to check).
    pub state: &'static str,
    pub resources: usize,
    pub present: usize,
}

/// Checks the data directory, and each of `inputs` for all-or-nothing.
pub async fn check(ws: &Workspace, inputs: &[PathBuf]) -> Result<CheckReport, IngestError> {
    let writer_active = ws.writer_elsewhere()?;
    let database = ws.store.check().await?;
    let stored = ws.store.resource_hashes().await?;
    let index = check_index(ws, &stored).await?;
    let inputs = check_inputs(ws, inputs, &stored).await?;
    let mut problems = database.problems();
    problems.extend(index_problems(&index));
    for i in inputs.iter().filter(|i| i.state == "partial") {
        problems.push(format!("{} is half-stored: {} of {} resources", i.source, i.present, i.resources));
    }
    Ok(CheckReport { ok: problems.is_empty(), problems, writer_active, database, index, inputs })
}

async fn check_index(ws: &Workspace, stored: &HashMap<String, String>) -> Result<IndexCheck, IngestError> {
    let database_ingest = ws.store.last_ingest_id().await?;
    let index_ingest = ws.index.committed_ingest_id()?;
    let keys: HashSet<String> = ws.index.committed_keys()?.into_iter().collect();
    let state = match index_ingest.cmp(&database_ingest) {
        std::cmp::Ordering::Equal => "in_step",
        std::cmp::Ordering::Less => "behind",
        std::cmp::Ordering::Greater => "ahead",
    };
    Ok(IndexCheck {
        database_ingest,
        index_ingest,
        state,
        documents: keys.len(),
        missing: stored.keys().filter(|k| !keys.contains(*k)).count(),
        extra: keys.iter().filter(|k| !stored.contains_key(*k)).count(),
    })
}

fn index_problems(ix: &IndexCheck) -> Vec<String> {
    let mut out = Vec::new();
    if ix.state == "ahead" {
        out.push(format!(
            "the index (ingest {}) is ahead of the database (ingest {})",
            ix.index_ingest, ix.database_ingest
        ));
    }
    if ix.state == "in_step" && ix.missing > 0 {
        out.push(format!("the index lacks {} stored resources", ix.missing));
    }
    if ix.extra > 0 {
        out.push(format!("the index holds {} documents that are not stored", ix.extra));
    }
    out
}

/// Each input's resources against the store: whole if its ingest was recorded, else absent.
async fn check_inputs(
    ws: &Workspace,
    inputs: &[PathBuf],
    stored: &HashMap<String, String>,
) -> Result<Vec<InputCheck>, IngestError> {
    let recorded = ws.store.ingested_inputs().await?;
    let max = ws.settings.max_input_bytes;
    let mut read = Vec::new();
    for path in inputs {
        let path = path.clone();
        let loaded = tokio::task::spawn_blocking(move || load_file(&path, max, None, Threads::TwoIfLarge))
            .await
            .map_err(|_| IngestError::ReaderGone)?;
        let keys: Option<Vec<String>> =
            loaded.result.ok().map(|b| b.resources.iter().map(|r| r.rref.to_string()).collect());
        let was_recorded = loaded.sha256.as_ref().is_some_and(|s| recorded.contains(s));
        read.push((loaded.source, keys, was_recorded));
    }
    // Resources that a recorded input brought may be present for an input that was not.
    let brought: HashSet<&String> =
        read.iter().filter(|(_, _, rec)| *rec).flat_map(|(_, k, _)| k.iter().flatten()).collect();
    Ok(read
        .iter()
        .map(|(source, keys, was_recorded)| {
            let Some(keys) = keys else {
                return InputCheck { source: source.clone(), state: "unreadable", resources: 0, present: 0 };
            };
            let present = keys.iter().filter(|k| stored.contains_key(*k)).count();
            let foreign = keys.iter().filter(|k| stored.contains_key(*k) && !brought.contains(k)).count();
            let state = match (was_recorded, present == keys.len(), foreign == 0) {
                (true, true, _) => "whole",
                (false, _, true) => "absent",
                _ => "partial",
            };
            InputCheck { source: source.clone(), state, resources: keys.len(), present }
        })
        .collect())
}
