//! Transcription of image attachments, after ingest and apart from it: each pending image is
//! turned into text by a `Transcriber` (Tesseract OCR on a CPU-only install; a vision model when
//! one is configured), and the text joins the record of the resource the image belongs to, with
//! where it came from. The queue is the `images` table, so a stopped run resumes where it left
//! off; an image that cannot be read is marked failed and never blocks the others.

mod model;
mod tesseract;

use serde::Serialize;

pub use model::ModelTranscriber;
pub use tesseract::Tesseract;

use super::{IngestError, Progress, Workspace};
use crate::retrieval::{IndexError, IndexedRecord};
use crate::store::PendingImage;

/// Turns an image (a normalised RGB PNG) into text.
pub trait Transcriber: Send + Sync {
    /// Named in provenance: `tesseract 5.3.0`, a model name.
    fn name(&self) -> &str;
    fn transcribe(&self, png: Vec<u8>) -> crate::llm::generator::BoxFuture<'_, Result<String, String>>;
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TranscribeReport {
    pub transcribed: usize,
    pub failed: usize,
    pub transcriber: String,
}

/// Images taken from the queue at a time.
const BATCH: i64 = 16;

/// Transcribes every pending image. Each transcript is written in its own turn of the data
/// directory's writer (`Workspace::writing`), so ingests are never held up for long; if another
/// process is writing, `IngestError::Busy` stops the run and the rest stays queued.
pub async fn transcribe_pending(
    ws: &Workspace,
    transcriber: std::sync::Arc<dyn Transcriber>,
    progress: &dyn Progress,
) -> Result<TranscribeReport, IngestError> {
    let mut report = TranscribeReport { transcriber: transcriber.name().to_owned(), ..Default::default() };
    let total = ws.store.pending_image_count().await?;
    if total == 0 {
        return Ok(report);
    }
    progress.start(total as u64, "transcribe");
    loop {
        let batch = ws.store.claim_images(BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for img in batch {
            let text = transcriber.transcribe(img.normalised.clone()).await;
            match text {
                Ok(text) if !text.trim().is_empty() => {
                    apply(ws, &img, &text, transcriber.name()).await?;
                    report.transcribed += 1;
                }
                Ok(_) => {
                    ws.store.image_failed(&img, "no text found").await?;
                    report.failed += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %crate::fhir::redact::redact(&e), "transcription failed");
                    ws.store.image_failed(&img, &e).await?;
                    report.failed += 1;
                }
            }
            progress.advance(1);
        }
    }
    progress.finish();
    Ok(report)
}

/// Database and index together: the index commit is prepared before the database commits,
/// and tagged with the new ingest id, so a crash in between is caught and repaired on open.
async fn apply(ws: &Workspace, img: &PendingImage, text: &str, by: &str) -> Result<(), IngestError> {
    let _writing = ws.writing().await?;
    let mut txn = ws.store.begin_write().await?;
    let mut writer = ws.index.writer()?;
    crate::ingest::rebuild::in_step(ws, &mut txn, &mut writer).await?;
    let Some((ingest_id, stored)) = txn.apply_transcript(img, ws.store.claimant(), text, by).await? else {
        tracing::info!(
            "an image's claim lapsed before its transcript was written; another transcriber has it"
        );
        txn.rollback().await?;
        writer.rollback()?;
        writer.finish()?;
        return Ok(());
    };
    writer.upsert(IndexedRecord { record: &stored.record, json: &stored.json, tokens: stored.tokens })?;
    let prepared = writer.prepare(ingest_id)?;
    txn.commit().await?;
    prepared.commit().map_err(IndexError::from)?;
    writer.finish()?;
    ws.index.reload()?;
    Ok(())
}
