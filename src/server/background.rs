//! Work the service does on its own: transcribing image attachments that arrive with bundles
//! or syncs, a few seconds after they land, without holding up any request.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use super::state::AppState;
use crate::ingest::transcribe::{transcribe_pending, Tesseract, Transcriber};
use crate::ingest::NoProgress;

/// How often the queue of images is looked at.
const EVERY: Duration = Duration::from_secs(3);

pub fn start(state: web::Data<AppState>) {
    let Some(t) = Tesseract::locate() else {
        tracing::warn!("tesseract not found: image attachments will not be transcribed");
        return;
    };
    let t: Arc<dyn Transcriber> = Arc::new(t);
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
