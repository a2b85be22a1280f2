//! Work the service does on its own: following what other processes write to its data
//! directory, and transcribing image attachments that arrive with bundles or syncs, a few seconds
//! after they land, without holding up any request.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use super::state::AppState;
use crate::fhir::redact::redact;
use crate::ingest::transcribe::{transcribe_pending, ModelTranscriber, Tesseract, Transcriber};
use crate::ingest::{IngestError, NoProgress};

/// How often the queue of images is looked at.
const EVERY: Duration = Duration::from_secs(3);

/// How often the service looks for what other processes wrote to its data directory.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Starts the service's own work: following the store, and transcribing images.
pub fn start(state: web::Data<AppState>) {
    follow(state.clone());
    transcribe(state);
}

/// Keeps searches in step with the store when another process committed to it (`ehrqa ingest`
/// or a crashed writer on this data directory; another replica on a shared PostgreSQL): see
/// `Workspace::follow`. It looks every `FOLLOW_EVERY`, and at once when PostgreSQL announces an
/// ingest.
fn follow(state: web::Data<AppState>) {
    let wake = Arc::new(tokio::sync::Notify::new());
    listen(state.clone(), wake.clone());
    tokio::spawn(async move {
        loop {
            if let Err(e) = state.ws.follow().await {
                tracing::warn!("following the store failed: {}", redact(&e.to_string()));
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
                () = wake.notified() => {}
            }
        }
    });
}

/// Wakes `follow` on each ingest PostgreSQL announces (`LISTEN`); nothing on SQLite. A lost
/// connection is opened again; meanwhile polling carries on.
fn listen(state: web::Data<AppState>, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            match state.ws.store.ingest_listener().await {
                Ok(None) => return,
                Ok(Some(mut listener)) => loop {
                    match listener.recv().await {
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            tracing::warn!("listening for ingests failed: {}", redact(&e.to_string()));
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!("cannot listen for ingests: {}", redact(&e.to_string())),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
}

/// Transcribes with the service's model when it sees images, else with Tesseract.
fn transcribe(state: web::Data<AppState>) {
    let model = state.model.as_ref().and_then(|m| ModelTranscriber::new(m.generator.clone()));
    let t: Arc<dyn Transcriber> = match (model, Tesseract::locate()) {
        (Some(m), _) => Arc::new(m),
        (None, Some(t)) => Arc::new(t),
        (None, None) => {
            tracing::warn!("no vision model and no tesseract: image attachments will not be transcribed");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            match transcribe_pending(&state.ws, t.clone(), &NoProgress).await {
                Ok(r) if r.transcribed + r.failed > 0 => {
                    tracing::info!(transcribed = r.transcribed, failed = r.failed, "images transcribed");
                }
                Ok(_) => {}
                Err(IngestError::Busy { .. }) => tracing::debug!("transcription waits for another writer"),
                Err(e) => tracing::error!("transcription stopped: {}", redact(&e.to_string())),
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}
