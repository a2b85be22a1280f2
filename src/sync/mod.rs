//! Syncing patients from a FHIR server (HAPI and others) into the data directory: per patient,
//! fetch (`$everything` or per-type searches, paged), inline Binary attachments, and ingest the
//! lot as one all-or-nothing input. A patient that fails is reported and the others go on; the
//! last successful sync per server and patient makes the next run incremental, so an interrupted
//! sync resumes where it stopped instead of starting over.

pub mod bulk;
pub mod client;
mod fetch;
pub mod notification;
pub mod origin;
pub mod signing;
pub mod smart;
pub mod subscription;
mod token;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use bulk::{BulkProgress, BulkReport, BulkRequest, BulkScope};
pub use client::{ClientError, FhirClient, ServerAuth};
pub use fetch::{Method, COMPARTMENT_TYPES};
pub use origin::{Origin, ServerList};

use crate::fhir::date::FhirDate;
use crate::fhir::input::Format;
use crate::fhir::reference::is_valid_id;
use crate::fhir::Threads;
use crate::ingest::{ingest_loaded, load_bytes, IngestError, Workspace};

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The server's base URL (`http://host:8080/fhir`).
    pub server: String,
    /// These patients, or every patient on the server when `all`.
    pub patients: Vec<String>,
    pub all: bool,
    /// Only what changed since this instant; by default, since this patient's last sync.
    pub since: Option<String>,
    /// Ignore the last sync: fetch everything.
    pub full: bool,
    /// Try `Patient/{id}/$everything` first (else per-type searches only).
    pub everything: bool,
    pub auth: ServerAuth,
    /// Resources per page asked of the server.
    pub page_size: usize,
    pub timeout: Duration,
}

impl SyncRequest {
    pub fn new(server: &str) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            patients: Vec::new(),
            all: false,
            since: None,
            full: false,
            everything: true,
            auth: ServerAuth::None,
            page_size: 500,
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Synced,
    Failed,
}

/// One patient's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PatientSync {
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Resources fetched and ingested.
    pub resources: usize,
    pub binaries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A sync's outcome (a JSON contract: `ehrqa sync --format json`, `GET /v1/jobs/{id}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub server: String,
    pub patients: Vec<PatientSync>,
    pub synced: usize,
    pub failed: usize,
    pub resources: usize,
    pub elapsed_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Server(#[from] ClientError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Reports as patients finish.
pub trait SyncProgress: Send + Sync {
    fn started(&self, _patients: usize) {}
    fn patient(&self, _done: &PatientSync) {}
}

pub struct Quiet;
impl SyncProgress for Quiet {}

/// Checks a request before any network traffic.
pub fn validate(req: &SyncRequest) -> Result<(), SyncError> {
    if !(req.server.starts_with("http://") || req.server.starts_with("https://")) {
        return Err(SyncError::Invalid(format!("server must be an http(s) URL, got {:?}", req.server)));
    }
    if req.all != req.patients.is_empty() {
        return Err(SyncError::Invalid("name patients or ask for all of them (not both)".into()));
    }
    if let Some(bad) = req.patients.iter().find(|p| !is_valid_id(p)) {
        return Err(SyncError::Invalid(format!("invalid patient id {bad:?}")));
    }
    if let Some(s) = req.since.as_deref().filter(|s| FhirDate::parse(s).is_none()) {
        return Err(SyncError::Invalid(format!("invalid --since instant {s:?}")));
    }
    if !(1..=5000).contains(&req.page_size) {
        return Err(SyncError::Invalid("page size must be 1 to 5000".into()));
    }
    Ok(())
}

/// Runs a sync. Each patient is ingested in its own turn of the data directory's writer.
#[tracing::instrument(skip_all, fields(patients = req.patients.len(), all = req.all))]
pub async fn run(
    ws: &Workspace,
    req: &SyncRequest,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, SyncError> {
    validate(req)?;
    let started = Instant::now();
    let client = FhirClient::new(&req.server, req.auth.clone(), req.timeout)?;
    let ids = if req.all { list_patients(&client, req.page_size).await? } else { req.patients.clone() };
    progress.started(ids.len());
    let mut report = SyncReport { server: req.server.clone(), ..SyncReport::default() };
    for id in ids {
        let done = one(ws, &client, req, &id).await?;
        match done.status {
            Status::Synced => report.synced += 1,
            Status::Failed => report.failed += 1,
        }
        report.resources += done.resources;
        progress.patient(&done);
        report.patients.push(done);
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

async fn list_patients(client: &FhirClient, page: usize) -> Result<Vec<String>, ClientError> {
    let all = client.all_pages(&format!("Patient?_count={page}&_elements=id")).await?;
    let mut ids: Vec<String> = all
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// One patient: fetched, ingested, remembered. Only a failing database stops the whole sync.
async fn one(
    ws: &Workspace,
    client: &FhirClient,
    req: &SyncRequest,
    id: &str,
) -> Result<PatientSync, SyncError> {
    let began = FhirDate::instant_string(crate::clock::now());
    let since = match (&req.since, req.full) {
        (Some(s), _) => Some(s.clone()),
        (None, false) => ws.store.last_sync(&req.server, id).await.map_err(IngestError::from)?,
        (None, true) => None,
    };
    let mut out = PatientSync {
        id: id.to_owned(),
        status: Status::Failed,
        method: None,
        resources: 0,
        binaries: 0,
        since: since.clone(),
        error: None,
    };
    let fetched = async {
        let (mut resources, method) =
            fetch::patient_resources(client, id, since.as_deref(), req.page_size, req.everything).await?;
        let binaries = fetch::inline_binaries(client, &mut resources).await?;
        Ok::<_, ClientError>((resources, method, binaries))
    }
    .await;
    let (resources, method, binaries) = match fetched {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %crate::fhir::redact::redact(&e.to_string()), "patient sync failed");
            out.error = Some(e.to_string());
            return Ok(out);
        }
    };
    let n = resources.len();
    let bytes = fetch::bundle(client, resources);
    if let Err(refused) =
        ingest_input(ws, format!("{}/Patient/{id}", req.server), bytes, Format::Json).await?
    {
        out.error = Some(refused);
        return Ok(out);
    }
    ws.store.set_last_sync(&req.server, id, &began).await.map_err(IngestError::from)?;
    out.status = Status::Synced;
    out.method = Some(method);
    out.resources = n;
    out.binaries = binaries;
    Ok(out)
}

/// One fetched input ingested all-or-nothing: the resources stored, or why the server's data was
/// refused (nothing of it stored). Only a failing database is an error of the sync's own.
pub(crate) async fn ingest_input(
    ws: &Workspace,
    source: String,
    bytes: Vec<u8>,
    format: Format,
) -> Result<Result<usize, String>, SyncError> {
    let counter = ws.counter.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        load_bytes(source, &bytes, format, counter.as_deref(), Threads::TwoIfLarge)
    })
    .await
    .map_err(|_| IngestError::ReaderGone)?;
    let loaded = match loaded.accepted() {
        Ok(l) => l,
        Err(e) => return Ok(Err(format!("the server's data was refused: {e}"))),
    };
    match ingest_loaded(ws, loaded).await {
        Ok(r) => Ok(Ok(r.resources)),
        Err(IngestError::Refused(reason)) => Ok(Err(format!("the server's data was refused: {reason}"))),
        Err(e) => Err(e.into()),
    }
}
