//! `ehrqa transcribe`: transcribe image attachments still waiting (after `ingest
//! --no-transcribe`, or an interrupted run).

use super::output::{print_json, OutputFormat};
use super::progress::Bar;
use crate::ingest::transcribe::{transcribe_pending, Tesseract, TranscribeReport};
use crate::ingest::Workspace;
use crate::settings::Settings;

/// Transcribes what is pending with Tesseract; without it, says so once and leaves the queue.
pub async fn pending(ws: &Workspace) -> anyhow::Result<Option<TranscribeReport>> {
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE status = 'pending'")
        .fetch_one(ws.store.pool())
        .await?;
    if waiting == 0 {
        return Ok(None);
    }
    let Some(t) = Tesseract::locate() else {
        tracing::warn!(
            waiting,
            "tesseract not found: image attachments stay untranscribed (scripts/setup installs it)"
        );
        return Ok(None);
    };
    Ok(Some(transcribe_pending(ws, std::sync::Arc::new(t), None, &Bar::new()).await?))
}

pub async fn run(settings: Settings, format: OutputFormat) -> anyhow::Result<bool> {
    let ws = Workspace::open(settings).await?;
    let report = pending(&ws).await?.unwrap_or_default();
    let counts: std::collections::BTreeMap<String, i64> =
        ws.store.image_counts().await?.into_iter().collect();
    match format {
        OutputFormat::Json => print_json(&serde_json::json!({ "transcription": report, "images": counts }))?,
        OutputFormat::Text => {
            println!("transcribed {}, failed {} ({})", report.transcribed, report.failed, report.transcriber);
            let c: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("images: {}", c.join(", "));
        }
    }
    Ok(true)
}
