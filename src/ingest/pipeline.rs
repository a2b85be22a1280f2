//! The ingest pipeline: files -> (loader threads: read, parse, prepare; `loaders`) -> (this task:
//! store, index, commit both).
//!
//! Reading and preparing the next inputs overlaps with writing the current one, and with the
//! group's commits. Inputs are committed in groups (one database transaction and one index commit
//! per group) because commits, not writes, dominate small inputs. Every input is still
//! all-or-nothing: it is refused before the first write if anything in it is unacceptable, and a
//! failure while writing rolls back the whole group, so no input is ever half-stored.

use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::report::{IngestReport, Timings};
use super::{IngestError, Progress, Workspace};
use crate::fhir::input::{self, Format};
use crate::fhir::{prepare, InputError, PreparedBatch, Threads};
use crate::retrieval::{IndexError, IndexUpdater, IndexedRecord};
use crate::store::{Change, Staged, WriteOutcome, WriteTxn};
use crate::tokens::TokenCounter;

/// A group is committed once it holds this many resources (or the input ends).
const GROUP_RESOURCES: usize = 40_000;

/// One input, read and prepared (or refused).
pub struct Loaded {
    pub source: String,
    /// Time spent reading, parsing and preparing.
    pub prepare_ms: f64,
    pub sha256: Option<String>,
    pub bytes: u64,
    pub result: Result<PreparedBatch, InputError>,
}

impl Loaded {
    /// The input if it was accepted, else why it was refused (for callers that ingest one input
    /// on its own and answer a refusal themselves).
    pub fn accepted(self) -> Result<Self, InputError> {
        match self.result {
            Ok(batch) => Ok(Self { result: Ok(batch), ..self }),
            Err(e) => Err(e),
        }
    }
}

/// Reads and prepares one file. Blocking; runs on a loader thread.
pub fn load_file(
    path: &std::path::Path,
    max_bytes: u64,
    counter: Option<&dyn TokenCounter>,
    threads: Threads,
) -> Loaded {
    let started = Instant::now();
    let source = path.display().to_string();
    let mut loaded = match input::read_file(path, max_bytes) {
        Ok(bytes) => load_bytes(source, &bytes, Format::for_path(path), counter, threads),
        Err(e) => Loaded { source, prepare_ms: 0.0, sha256: None, bytes: 0, result: Err(e) },
    };
    loaded.prepare_ms = ms(started);
    loaded
}

/// Parses and prepares input bytes (a file's or a request body's). Blocking.
pub fn load_bytes(
    source: String,
    bytes: &[u8],
    format: Format,
    counter: Option<&dyn TokenCounter>,
    threads: Threads,
) -> Loaded {
    let started = Instant::now();
    let sha256 = Some(hex::encode(Sha256::digest(bytes)));
    let result = input::parse(bytes, format).and_then(|raw| prepare(raw, counter, threads));
    Loaded { source, prepare_ms: ms(started), sha256, bytes: bytes.len() as u64, result }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Ingests files; refused inputs are reported, not fatal. Fails only when the database or the
/// index fails: then nothing of the current group is stored, unless the database committed it
/// as the index failed (`IngestError::IndexBehind`, the group whole in the database).
#[tracing::instrument(skip_all, fields(files = files.len()))]
pub async fn ingest_files(
    ws: &Workspace,
    files: Vec<PathBuf>,
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let total: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    // One input waits for the writer: the loaders hold the rest (`loaders`).
    let (tx, rx) = mpsc::channel::<Loaded>(1);
    let loading = super::loaders::spawn(files, ws.settings.max_input_bytes, ws.counter.clone(), tx);
    let result = ingest_stream(ws, rx, total, progress).await;
    loading.join().map_err(|_| IngestError::ReaderGone)?;
    result
}

/// Ingests inputs as they come from `rx` (loaded by whoever sends them: the loader threads for
/// files, a download for a Bulk Data export), committed in groups. Refused inputs are reported,
/// not fatal; `total` bytes are expected, for progress.
pub async fn ingest_stream(
    ws: &Workspace,
    mut rx: mpsc::Receiver<Loaded>,
    total: u64,
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let writing = ws.writing().await?;
    progress.start(total, "ingest");
    let mut report = IngestReport::default();
    let result = async {
        let mut group = Group::new(ws)?;
        while let Some(loaded) = rx.recv().await {
            let size = loaded.bytes;
            group.add(loaded, &mut report).await?;
            if group.resources >= GROUP_RESOURCES {
                group.commit(&mut report).await?;
            }
            progress.advance(size);
        }
        group.commit(&mut report).await?;
        group.finish()
    }
    .await;
    drop(rx);
    progress.finish();
    result?;
    ws.index.reload()?;
    drop(writing);
    report.references = ws.store.ref_counts().await?;
    let secs = started.elapsed().as_secs_f64();
    report.elapsed_ms = (secs * 1000.0) as u64;
    report.resources_per_sec = if secs > 0.0 { report.resources as f64 / secs } else { 0.0 };
    Ok(report)
}

/// Ingests one already loaded input on its own (the REST API's unit of work); an input the store
/// refuses is `IngestError::Refused`.
pub async fn ingest_loaded(ws: &Workspace, loaded: Loaded) -> Result<IngestReport, IngestError> {
    let _writing = ws.writing().await?;
    let mut report = IngestReport::default();
    let mut group = Group::new(ws)?;
    group.add(loaded, &mut report).await?;
    group.commit(&mut report).await?;
    group.finish()?;
    ws.index.reload()?;
    match report.failed.pop() {
        Some(refused) => Err(IngestError::Refused(refused.error)),
        None => Ok(report),
    }
}

/// Inputs written to one open transaction and one uncommitted index state.
struct Group<'a> {
    ws: &'a Workspace,
    writer: IndexUpdater,
    txn: Option<WriteTxn>,
    outcomes: Vec<(WriteOutcome, usize)>,
    issues: Vec<String>,
    resources: usize,
    timings: Timings,
}

impl<'a> Group<'a> {
    fn new(ws: &'a Workspace) -> Result<Self, IngestError> {
        Ok(Self {
            ws,
            writer: ws.index.writer()?,
            txn: None,
            outcomes: Vec::new(),
            issues: Vec::new(),
            resources: 0,
            timings: Timings::default(),
        })
    }

    /// Stages one input, or records why it was refused.
    async fn add(&mut self, loaded: Loaded, report: &mut IngestReport) -> Result<(), IngestError> {
        report.inputs += 1;
        self.timings.prepare_ms += loaded.prepare_ms;
        let batch = match loaded.result {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(source = %loaded.source, error = %e, "input refused");
                report.fail(loaded.source, e);
                return Ok(());
            }
        };
        match self.stage(&batch, &loaded.source, loaded.sha256.as_deref()).await {
            Ok(None) => {}
            Ok(Some(refusal)) => {
                report.fail(loaded.source, refusal);
                return Ok(());
            }
            Err(e) => {
                self.abandon().await;
                return Err(e);
            }
        }
        for r in &batch.resources {
            self.issues.extend(r.record.issues.iter().cloned());
        }
        self.resources += batch.resources.len();
        drop_elsewhere(batch);
        Ok(())
    }

    /// Writes one input into the group; `Some(reason)` when the store refused it (nothing of
    /// it was written).
    async fn stage(
        &mut self,
        batch: &PreparedBatch,
        source: &str,
        sha: Option<&str>,
    ) -> Result<Option<String>, IngestError> {
        let t = Instant::now();
        if self.txn.is_none() {
            let mut txn = self.ws.store.begin_write().await?;
            super::rebuild::in_step(self.ws, &mut txn, &mut self.writer).await?;
            self.txn = Some(txn);
        }
        let txn = self.txn.as_mut().expect("just opened");
        let outcome = match txn.stage(batch, source, sha).await? {
            Staged::Written(outcome) => outcome,
            Staged::Refused(reason) => return Ok(Some(reason)),
        };
        self.timings.store_ms += ms(t);
        let t = Instant::now();
        for (r, change) in batch.resources.iter().zip(&outcome.changes) {
            let doc = IndexedRecord { record: &r.record, json: &r.record_json, tokens: r.tokens };
            match change {
                Change::New => self.writer.add(doc)?,
                Change::Updated => self.writer.upsert(doc)?,
                Change::Unchanged | Change::Stale => {}
            }
        }
        for a in &outcome.adopted {
            self.writer.upsert(IndexedRecord { record: &a.record, json: &a.json, tokens: a.tokens })?;
        }
        self.timings.index_ms += ms(t);
        self.outcomes.push((outcome, batch.duplicates));
        Ok(None)
    }

    /// Commits the database while the index prepares its commit, then commits the index and
    /// counts the group. The two used to run one after the other, and on `synthea-java` (one
    /// group) they were a quarter of the run with one core busy: the index's prepare took 45-95
    /// ms and the database's commit 165-175 ms. Run together, a failure of either leaves nothing
    /// of the group in the index; a database that committed while the index failed holds the
    /// group and the error says so (`IngestError::IndexBehind`): the next write brings the index
    /// in step (`rebuild::catch_up`), as after a crash between the two commits.
    async fn commit(&mut self, report: &mut IngestReport) -> Result<(), IngestError> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let t = Instant::now();
        let last_id = self.outcomes.last().map_or(0, |(o, _)| o.ingest_id);
        // On a current-thread runtime (an actix worker) the task only starts once the prepare
        // is done: the same order as before, without the overlap.
        let database = tokio::spawn(txn.commit());
        let prepared = crate::blocking::in_place(|| self.writer.prepare(last_id));
        let database = database.await.map_err(|_| IngestError::CommitGone)?;
        match (prepared, database) {
            (Ok(prepared), Ok(())) => {
                prepared.commit().map_err(IndexError::from)?;
            }
            (Ok(prepared), Err(e)) => {
                prepared.abort().map_err(IndexError::from)?;
                return Err(e.into());
            }
            (Err(e), Ok(())) => {
                self.writer.rollback()?;
                return Err(IngestError::IndexBehind(e));
            }
            (Err(e), Err(_)) => {
                self.writer.rollback()?;
                return Err(e.into());
            }
        }
        self.timings.commit_ms += ms(t);
        for (o, duplicates) in self.outcomes.drain(..) {
            report.add(&o);
            report.duplicates += duplicates;
        }
        for issue in self.issues.drain(..) {
            *report.normalisation_issues.entry(issue_kind(&issue)).or_default() += 1;
        }
        report.timings.add(&std::mem::take(&mut self.timings));
        self.resources = 0;
        Ok(())
    }

    /// Rolls back everything staged in this group.
    async fn abandon(&mut self) {
        if let Some(txn) = self.txn.take() {
            if let Err(e) = txn.rollback().await {
                tracing::error!(error = %crate::fhir::redact::redact(&e.to_string()), "rollback failed");
            }
        }
        if let Err(e) = self.writer.rollback() {
            tracing::error!(error = %crate::fhir::redact::redact(&e.to_string()), "index rollback failed");
        }
        self.outcomes.clear();
        self.issues.clear();
    }

    fn finish(self) -> Result<(), IngestError> {
        self.writer.finish()?;
        Ok(())
    }
}

/// Drops `value` on one of the runtime's blocking threads instead of the caller's. The writer
/// is the thread every other stage waits for, and freeing an input it has written (tens of
/// thousands of records, strings and JSON texts) was about 2% of ingest's CPU (`perf`), all on
/// it. The runtime waits for its blocking threads when it shuts down, so nothing outlives the
/// process's work.
fn drop_elsewhere<T: Send + 'static>(value: T) {
    tokio::task::spawn_blocking(move || drop(value));
}

/// Groups issue messages by their kind (the path, without indices or values).
fn issue_kind(issue: &str) -> String {
    let head = issue.split(':').next().unwrap_or(issue);
    head.chars().filter(|c| !c.is_ascii_digit()).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread::ThreadId;

    /// Reports the thread it is dropped on.
    struct Witness(mpsc::Sender<ThreadId>);

    impl Drop for Witness {
        fn drop(&mut self) {
            let _ = self.0.send(std::thread::current().id());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_written_input_is_dropped_off_the_writers_thread() {
        let (tx, rx) = mpsc::channel();
        super::drop_elsewhere(Witness(tx));
        let dropped_on = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("dropped");
        assert_ne!(dropped_on, std::thread::current().id());
    }
}
