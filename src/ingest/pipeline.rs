//! The ingest pipeline: files -> (reader thread: read, parse, prepare) -> (this task: store,
//! index, commit both).
//!
//! Reading and preparing the next input overlaps with writing the current one: on two cores
//! that keeps both busy. Each input is all-or-nothing: its database transaction is committed only
//! after the index commit is prepared, and rolled back (with the index) if anything fails.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::report::IngestReport;
use super::{IngestError, Progress, Workspace};
use crate::fhir::input::{self, Format};
use crate::fhir::{prepare, InputError, PreparedBatch};
use crate::retrieval::IndexUpdater;
use crate::store::WriteOutcome;

/// One input, read and prepared (or refused).
pub struct Loaded {
    pub source: String,
    pub sha256: Option<String>,
    pub bytes: u64,
    pub result: Result<PreparedBatch, InputError>,
}

/// Reads and prepares one file. Blocking; runs on the reader thread.
pub fn load_file(path: &std::path::Path, max_bytes: u64) -> Loaded {
    let source = path.display().to_string();
    match input::read_file(path, max_bytes) {
        Ok(bytes) => load_bytes(source, &bytes, Format::for_path(path)),
        Err(e) => Loaded { source, sha256: None, bytes: 0, result: Err(e) },
    }
}

/// Parses and prepares input bytes (a file's or a request body's). Blocking.
pub fn load_bytes(source: String, bytes: &[u8], format: Format) -> Loaded {
    let sha256 = Some(hex::encode(Sha256::digest(bytes)));
    let result = input::parse(bytes, format).and_then(prepare);
    Loaded { source, sha256, bytes: bytes.len() as u64, result }
}

/// Ingests files; refused inputs are reported, not fatal. Fails only when the database or the
/// index fails.
#[tracing::instrument(skip_all, fields(files = files.len()))]
pub async fn ingest_files(
    ws: &Workspace,
    files: Vec<PathBuf>,
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let total: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    progress.start(total, "ingest");
    let (tx, mut rx) = mpsc::channel::<Loaded>(2);
    let max = ws.settings.max_input_bytes;
    let reader = std::thread::spawn(move || {
        for f in files {
            if tx.blocking_send(load_file(&f, max)).is_err() {
                break;
            }
        }
    });
    let mut writer = ws.index.writer()?;
    let mut report = IngestReport::default();
    let mut failure = None;
    while let Some(loaded) = rx.recv().await {
        report.inputs += 1;
        let size = loaded.bytes;
        if let Err(e) = commit_loaded(ws, &mut writer, loaded, &mut report).await {
            failure = Some(e);
            break;
        }
        progress.advance(size);
    }
    drop(rx);
    reader.join().map_err(|_| IngestError::ReaderGone)?;
    writer.finish()?;
    ws.index.reload()?;
    progress.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    finish_report(ws, &mut report, started).await?;
    Ok(report)
}

/// Stores one loaded input, or records why it was refused.
pub async fn commit_loaded(
    ws: &Workspace,
    writer: &mut IndexUpdater,
    loaded: Loaded,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let batch = match loaded.result {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(source = %loaded.source, error = %e, "input refused");
            report.fail(loaded.source, e);
            return Ok(());
        }
    };
    let outcome = commit_batch(ws, writer, &batch, &loaded.source, loaded.sha256.as_deref()).await?;
    report.add(&outcome);
    report.duplicates += batch.duplicates;
    for r in &batch.resources {
        for issue in &r.record.issues {
            *report.normalisation_issues.entry(issue_kind(issue)).or_default() += 1;
        }
    }
    Ok(())
}

/// Writes a prepared input to the database and the index, committing both or neither.
pub async fn commit_batch(
    ws: &Workspace,
    writer: &mut IndexUpdater,
    batch: &PreparedBatch,
    source: &str,
    sha256: Option<&str>,
) -> Result<WriteOutcome, IngestError> {
    let staged = ws.store.stage(batch, source, sha256).await?;
    let changed: HashSet<_> = staged.outcome.changed.iter().collect();
    let indexed = batch
        .resources
        .iter()
        .filter(|r| changed.contains(&r.rref))
        .try_for_each(|r| writer.upsert(&r.record));
    if let Err(e) = indexed {
        staged.rollback().await?;
        writer.rollback()?;
        return Err(e.into());
    }
    let ingest_id = staged.outcome.ingest_id;
    let prepared = match writer.prepare(ingest_id) {
        Ok(p) => p,
        Err(e) => {
            staged.rollback().await?;
            writer.rollback()?;
            return Err(e.into());
        }
    };
    match staged.commit().await {
        Ok(outcome) => {
            prepared.commit().map_err(crate::retrieval::IndexError::from)?;
            Ok(outcome)
        }
        Err(e) => {
            prepared.abort().map_err(crate::retrieval::IndexError::from)?;
            Err(e.into())
        }
    }
}

/// Groups issue messages by their kind (the path, without indices or values).
fn issue_kind(issue: &str) -> String {
    let head = issue.split(':').next().unwrap_or(issue);
    head.chars().filter(|c| !c.is_ascii_digit()).collect()
}

async fn finish_report(
    ws: &Workspace,
    report: &mut IngestReport,
    started: Instant,
) -> Result<(), IngestError> {
    report.references = ws.store.ref_counts().await?;
    let secs = started.elapsed().as_secs_f64();
    report.elapsed_ms = (secs * 1000.0) as u64;
    report.resources_per_sec = if secs > 0.0 { report.resources as f64 / secs } else { 0.0 };
    Ok(())
}
