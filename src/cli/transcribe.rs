//! `ehrqa transcribe [--with-model [model options]]`: transcribe image attachments still waiting
//! (after `ingest --no-transcribe`, or an interrupted run), with Tesseract OCR or a vision model.

use std::sync::Arc;

use super::model::ModelArgs;
use super::output::{print_json, OutputFormat};
use super::progress::Bar;
use crate::ingest::transcribe::{
    transcribe_pending, ModelTranscriber, Tesseract, TranscribeReport, Transcriber,
};
use crate::ingest::{IngestError, Workspace};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Transcribe with a vision model (MedGemma 1.5) instead of Tesseract OCR.
    #[arg(long)]
    pub with_model: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Transcribes what is pending with Tesseract; without it, says so once and leaves the queue.
pub async fn pending(ws: &Workspace) -> anyhow::Result<Option<TranscribeReport>> {
    pending_with(ws, None).await
}

async fn pending_with(
    ws: &Workspace,
    with: Option<Arc<dyn Transcriber>>,
) -> anyhow::Result<Option<TranscribeReport>> {
    let waiting = ws.store.pending_image_count().await?;
    if waiting == 0 {
        return Ok(None);
    }
    let t: Arc<dyn Transcriber> = match (with, Tesseract::locate()) {
        (Some(t), _) => t,
        (None, Some(t)) => Arc::new(t),
        (None, None) => {
            tracing::warn!(
                waiting,
                "tesseract not found: images stay untranscribed (scripts/setup installs it)"
            );
            return Ok(None);
        }
    };
    match transcribe_pending(ws, t, &Bar::new()).await {
        Ok(report) => Ok(Some(report)),
        Err(e @ IngestError::Busy { .. }) => {
            eprintln!("note: images left waiting for transcription: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let with: Option<Arc<dyn Transcriber>> = if args.with_model {
        let generator = args.model.load(&settings)?;
        let t = ModelTranscriber::new(generator).ok_or_else(|| {
            anyhow::anyhow!("the model cannot see images (use a multimodal checkpoint, or --llm-vision)")
        })?;
        Some(Arc::new(t))
    } else {
        None
    };
    let ws = Workspace::open(settings).await?;
    let report = pending_with(&ws, with).await?.unwrap_or_default();
    let counts: std::collections::BTreeMap<String, i64> =
        ws.store.image_counts().await?.into_iter().collect();
    match format {
        OutputFormat::Json => print_json(&serde_json::json!({ "transcription": report, "images": counts }))?,
        OutputFormat::Text => {
            println!("transcribed {}, failed {} ({})", report.transcribed, report.failed, report.transcriber);
            let c: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("images in store: {}", c.join(", "));
        }
    }
    Ok(true)
}
