//! The ingest summary (a JSON contract of `ehrqa ingest --format json`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{RefCounts, WriteOutcome};

/// An input that was refused, and why. Nothing of it was stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    /// Inputs read (files, or request bodies).
    pub inputs: usize,
    pub ingested: usize,
    pub failed: Vec<Failure>,
    /// Resources in the accepted inputs.
    pub resources: usize,
    pub by_type: BTreeMap<String, usize>,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Older versions than the stored ones: ignored.
    pub stale: usize,
    /// Entries that repeated an earlier entry of the same input: the last one was kept.
    pub duplicates: usize,
    /// What normalisation could not read, by kind (the raw resources keep it).
    pub normalisation_issues: BTreeMap<String, usize>,
    /// References across the whole store after this ingest.
    pub references: RefCounts,
    pub elapsed_ms: u64,
    pub resources_per_sec: f64,
    /// Where the time went (the loader threads' work overlaps the rest).
    pub timings: Timings,
    /// Image attachments in the store by status (pending, transcribed, stored, refused, failed),
    /// after this run's transcription.
    pub images: BTreeMap<String, i64>,
}

/// Milliseconds per pipeline stage, summed over inputs.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = IngestTimings)]
pub struct Timings {
    /// Read, parse, resolve, normalise, hash (loader threads, summed).
    pub prepare_ms: f64,
    /// Database writes and reference resolution, inside the transaction.
    pub store_ms: f64,
    /// Adding documents to the index writer.
    pub index_ms: f64,
    /// Index flush and both commits.
    pub commit_ms: f64,
}

impl Timings {
    pub fn add(&mut self, o: &Timings) {
        self.prepare_ms += o.prepare_ms;
        self.store_ms += o.store_ms;
        self.index_ms += o.index_ms;
        self.commit_ms += o.commit_ms;
    }
}

impl IngestReport {
    pub fn add(&mut self, o: &WriteOutcome) {
        self.ingested += 1;
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.stale += o.stale;
        for (t, n) in &o.by_type {
            *self.by_type.entry(t.clone()).or_default() += n;
            self.resources += n;
        }
    }

    pub fn fail(&mut self, path: impl Into<String>, error: impl ToString) {
        self.failed.push(Failure { path: path.into(), error: error.to_string() });
    }
}
