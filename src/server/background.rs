//! Work the service does on its own: transcribing image attachments that arrive with bundles
//! or syncs, a few seconds after they land, without holding up any request.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use super::state::AppState;
use crate::ingest::transcribe::{transcribe_pending, ModelTranscriber, Tesseract, Transcriber};
use crate::ingest::NoProgress;

/// How often the queue of images is looked at.
const EVERY: Duration = Duration::from_secs(3);

/// Starts transcribing with the service's model when it sees images, else with Tesseract.
pub fn start(state: web::Data<AppState>) {
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
            match transcribe_pending(&state.ws, t.clone(), Some(&state.ingest_lock), &NoProgress).await {
                Ok(r) if r.transcribed + r.failed > 0 => {
                    tracing::info!(transcribed = r.transcribed, failed = r.failed, "images transcribed");
                }
                Ok(_) => {}
                Err(e) => tracing::error!("transcription stopped: {e}"),
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}
