//! Populations through Bulk Data `$export` (FHIR Bulk Data Access 2.0): kick-off with
//! `Prefer: respond-async`, the status URL polled as the server's `Retry-After` says (its
//! `X-Progress` shown), each NDJSON output downloaded and ingested as it arrives (Patient first,
//! each file all-or-nothing), the error outputs counted, and the export deleted on the server at
//! the end. The status URL is stored while the export runs, so an interrupted sync polls it again
//! rather than exporting anew; the completed export's `transactionTime` is the next one's `_since`.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value as Json;

use super::client::{query_escape, ClientError, FhirClient, Poll, ServerAuth};
use super::SyncError;
use crate::fhir::date::FhirDate;
use crate::fhir::input::Format;
use crate::fhir::reference::is_valid_id;
use crate::fhir::resource_type::is_known;
use crate::fhir::Threads;
use tokio::sync::mpsc;

use crate::ingest::{ingest_stream, load_bytes, IngestError, Loaded, NoProgress, Workspace};

/// Whose data an export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkScope {
    /// `Patient/$export`: every patient's compartment.
    AllPatients,
    /// `Group/{id}/$export`: the group's members.
    Group(String),
}

/// What to export.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub server: String,
    pub scope: BulkScope,
    /// Only these resource types (`_type`); all when empty.
    pub types: Vec<String>,
    /// Only what changed since this instant; by default since the last completed export.
    pub since: Option<String>,
    /// Ignore the last export: ask for everything.
    pub full: bool,
    pub auth: ServerAuth,
    pub timeout: Duration,
}

impl BulkRequest {
    /// The key its state is kept under: the scope and the types asked.
    fn state_key(&self) -> String {
        let scope = match &self.scope {
            BulkScope::AllPatients => "patients".to_owned(),
            BulkScope::Group(id) => format!("group/{id}"),
        };
        match self.types.is_empty() {
            true => scope,
            false => format!("{scope};types={}", self.types.join(",")),
        }
    }

    fn kick_off_path(&self, since: Option<&str>) -> String {
        let mut path = match &self.scope {
            BulkScope::AllPatients => "Patient/$export".to_owned(),
            BulkScope::Group(id) => format!("Group/{id}/$export"),
        };
        let mut params = vec!["_outputFormat=application%2Ffhir%2Bndjson".to_owned()];
        if !self.types.is_empty() {
            params.push(format!("_type={}", self.types.join(",")));
        }
        if let Some(s) = since {
            params.push(format!("_since={}", query_escape(s)));
        }
        path.push('?');
        path.push_str(&params.join("&"));
        path
    }
}

/// Checks an export request before any network traffic.
pub fn validate(req: &BulkRequest) -> Result<(), SyncError> {
    if let BulkScope::Group(id) = &req.scope {
        if !is_valid_id(id) {
            return Err(SyncError::Invalid(format!("invalid group id {id:?}")));
        }
    }
    if let Some(t) = req.types.iter().find(|t| !is_known(t)) {
        return Err(SyncError::Invalid(format!("unknown resource type {t:?}")));
    }
    if let Some(s) = req.since.as_deref().filter(|s| FhirDate::parse(s).is_none()) {
        return Err(SyncError::Invalid(format!("invalid --since instant {s:?}")));
    }
    Ok(())
}

/// One output file's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct BulkFile {
    #[serde(rename = "type")]
    pub rtype: String,
    pub resources: usize,
    /// Why the file was not ingested (nothing of it was stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An export's outcome (a JSON contract: `ehrqa sync --bulk --format json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BulkReport {
    pub server: String,
    pub scope: String,
    /// True when an export started by an earlier, interrupted run was finished.
    pub resumed: bool,
    /// The `_since` asked (absent: everything, or a resumed export's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The server's `transactionTime`: the next export asks for changes since then.
    pub transaction_time: Option<String>,
    pub files: Vec<BulkFile>,
    pub resources: usize,
    /// OperationOutcomes in the server's error outputs (their text is not repeated here).
    pub errors: usize,
    pub elapsed_ms: u64,
}

/// What a long export shows while it runs.
pub trait BulkProgress: Send + Sync {
    fn waiting(&self, _progress: Option<&str>) {}
    fn file(&self, _file: &BulkFile, _done: usize, _total: usize) {}
}

/// Output files downloaded and prepared at once (each whole in memory until it is written).
const DOWNLOADS_AT_ONCE: usize = 4;

/// Longest wait between polls, whatever `Retry-After` asks (a server may say an hour).
const MAX_POLL_WAIT: Duration = Duration::from_secs(120);
/// Wait between polls when the server does not say.
const DEFAULT_POLL_WAIT: Duration = Duration::from_secs(2);

/// Runs an export to its end and ingests it.
#[tracing::instrument(skip_all, fields(scope = %req.state_key()))]
pub async fn run(
    ws: &Workspace,
    req: &BulkRequest,
    progress: &dyn BulkProgress,
) -> Result<BulkReport, SyncError> {
    validate(req)?;
    let started = Instant::now();
    let client = FhirClient::new(&req.server, req.auth.clone(), req.timeout)?;
    let key = req.state_key();
    let state = ws.store.bulk_state(&req.server, &key).await.map_err(IngestError::from)?;
    let mut report = BulkReport { server: req.server.clone(), scope: key.clone(), ..BulkReport::default() };
    let (status_url, manifest) = match state.status_url {
        Some(url) => match wait(&client, &url, progress).await {
            Ok(m) => {
                report.resumed = true;
                (url, m)
            }
            // The server no longer has it (expired, deleted): a new export, as if none had run.
            Err(ClientError::NotFound(..)) => {
                start(ws, &client, req, &key, state.transaction_time, &mut report, progress).await?
            }
            Err(e) => return Err(e.into()),
        },
        None => start(ws, &client, req, &key, state.transaction_time, &mut report, progress).await?,
    };
    ingest_outputs(ws, &client, &manifest, &mut report, progress).await?;
    report.errors = count_errors(&client, &manifest).await;
    if let Err(e) = client.delete(&status_url).await {
        tracing::warn!(error = %e, "the finished export could not be deleted on the server");
    }
    let whole = report.files.iter().all(|f| f.error.is_none());
    report.transaction_time = manifest["transactionTime"].as_str().map(str::to_owned);
    let done_at = report.transaction_time.as_deref().filter(|_| whole);
    ws.store.bulk_finished(&req.server, &key, done_at).await.map_err(IngestError::from)?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Kicks off a new export (since the last one completed, unless told otherwise), remembers its
/// status URL, and waits for its manifest.
async fn start(
    ws: &Workspace,
    client: &FhirClient,
    req: &BulkRequest,
    key: &str,
    last: Option<String>,
    report: &mut BulkReport,
    progress: &dyn BulkProgress,
) -> Result<(String, Json), SyncError> {
    let since = match (&req.since, req.full) {
        (Some(s), _) => Some(s.clone()),
        (None, false) => last,
        (None, true) => None,
    };
    let url = client.kick_off(&req.kick_off_path(since.as_deref())).await?;
    ws.store.bulk_started(&req.server, key, &url).await.map_err(IngestError::from)?;
    report.since = since;
    let manifest = wait(client, &url, progress).await?;
    Ok((url, manifest))
}

/// Polls until the export is done, waiting what the server asks (bounded).
async fn wait(
    client: &FhirClient,
    status_url: &str,
    progress: &dyn BulkProgress,
) -> Result<Json, ClientError> {
    loop {
        match client.poll(status_url).await? {
            Poll::Done(manifest) => return Ok(manifest),
            Poll::Running { progress: p, retry_after } => {
                progress.waiting(p.as_deref());
                tokio::time::sleep(retry_after.unwrap_or(DEFAULT_POLL_WAIT).min(MAX_POLL_WAIT)).await;
            }
        }
    }
}

/// Where a type's file goes in the ingest order: what others refer to before what refers to it,
/// so a rendering that names its targets (a report's results, a claim's items) finds them
/// stored, as it would in one bundle.
fn ingest_rank(rtype: &str) -> u8 {
    match rtype {
        "Patient" => 0,
        "Organization" | "Practitioner" | "PractitionerRole" | "Location" | "Medication" | "Device"
        | "Substance" => 1,
        "Encounter" | "EpisodeOfCare" => 2,
        "DiagnosticReport"
        | "DocumentReference"
        | "CarePlan"
        | "CareTeam"
        | "ImagingStudy"
        | "Composition"
        | "MedicationAdministration"
        | "MedicationDispense" => 4,
        "Claim" | "ExplanationOfBenefit" | "Coverage" | "Provenance" | "AuditEvent" => 5,
        _ => 3,
    }
}

/// The manifest's outputs in `ingest_rank` order, all in the ingest's commit groups (a file is
/// still all-or-nothing). Up to [`DOWNLOADS_AT_ONCE`] files are downloaded and prepared at once,
/// in order, while the ones before are written: round trips to a remote server overlap, and
/// preparation uses both cores.
async fn ingest_outputs(
    ws: &Workspace,
    client: &FhirClient,
    manifest: &Json,
    report: &mut BulkReport,
    progress: &dyn BulkProgress,
) -> Result<(), SyncError> {
    let token = manifest["requiresAccessToken"].as_bool().unwrap_or(true);
    let mut outputs: Vec<(&str, &str)> = manifest["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o["type"].as_str()?, o["url"].as_str()?)))
        .collect();
    outputs.sort_by_key(|(t, _)| ingest_rank(t));
    let total = outputs.len();
    let (tx, rx) = mpsc::channel::<Loaded>(2);
    let counter = ws.counter.clone();
    let prepared = futures_util::stream::iter(outputs)
        .map(|(rtype, url)| {
            let counter = counter.clone();
            async move {
                let bytes = client.download(url, token).await?;
                let source = url.to_owned();
                // One thread per file: several files are prepared at once.
                let loaded = tokio::task::spawn_blocking(move || {
                    load_bytes(source, &bytes, Format::Ndjson, counter.as_deref(), Threads::One)
                })
                .await
                .map_err(|_| IngestError::ReaderGone)?;
                Ok::<_, SyncError>((rtype, url, loaded))
            }
        })
        .buffered(DOWNLOADS_AT_ONCE);
    let fetch = async move {
        let mut files = Vec::with_capacity(total);
        let mut prepared = std::pin::pin!(prepared);
        while let Some(next) = prepared.next().await {
            let (rtype, url, loaded) = next?;
            let file = BulkFile {
                rtype: rtype.to_owned(),
                resources: loaded.result.as_ref().map_or(0, |b| b.resources.len()),
                error: None,
            };
            progress.file(&file, files.len() + 1, total);
            files.push((file, url.to_owned()));
            if tx.send(loaded).await.is_err() {
                break;
            }
        }
        Ok::<_, SyncError>(files)
    };
    let (files, ingested) = tokio::join!(fetch, ingest_stream(ws, rx, 0, &NoProgress));
    let (files, ingested) = (files?, ingested?);
    for (mut file, url) in files {
        if let Some(refused) = ingested.failed.iter().find(|f| f.path == url) {
            file.error = Some(format!("the server's data was refused: {}", refused.error));
            file.resources = 0;
        }
        report.resources += file.resources;
        report.files.push(file);
    }
    Ok(())
}

/// OperationOutcomes in the error outputs; an error file that cannot be read counts as one.
async fn count_errors(client: &FhirClient, manifest: &Json) -> usize {
    let token = manifest["requiresAccessToken"].as_bool().unwrap_or(true);
    let mut n = 0;
    for url in manifest["error"].as_array().into_iter().flatten().filter_map(|e| e["url"].as_str()) {
        n += match client.download(url, token).await {
            Ok(bytes) => {
                bytes.split(|b| *b == b'\n').filter(|l| l.iter().any(|b| !b.is_ascii_whitespace())).count()
            }
            Err(_) => 1,
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(scope: BulkScope, types: &[&str], since: Option<&str>) -> BulkRequest {
        BulkRequest {
            server: "http://h/fhir".into(),
            scope,
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            since: since.map(str::to_owned),
            full: false,
            auth: ServerAuth::None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn kick_off_names_the_scope_types_and_since() {
        let r = req(BulkScope::Group("g1".into()), &["Patient", "Observation"], None);
        assert_eq!(r.state_key(), "group/g1;types=Patient,Observation");
        let path = r.kick_off_path(Some("2026-01-02T03:04:05+00:00"));
        assert!(path.starts_with("Group/g1/$export?"), "{path}");
        assert!(path.contains("_type=Patient,Observation"), "{path}");
        assert!(path.contains("_since=2026-01-02T03%3A04%3A05%2B00%3A00"), "{path}");
        assert_eq!(req(BulkScope::AllPatients, &[], None).state_key(), "patients");
    }

    #[test]
    fn bad_requests_are_refused_before_any_traffic() {
        assert!(validate(&req(BulkScope::Group("a b".into()), &[], None)).is_err());
        assert!(validate(&req(BulkScope::AllPatients, &["NotAType"], None)).is_err());
        assert!(validate(&req(BulkScope::AllPatients, &[], Some("yesterday"))).is_err());
        assert!(validate(&req(BulkScope::AllPatients, &["Observation"], Some("2026-01-01"))).is_ok());
    }
}
