//! `ehrqa reindex`

use serde_json::json;

use super::output::{print_json, thousands, OutputFormat};
use super::progress::Bar;
use crate::ingest::{rebuild, Workspace};
use crate::settings::Settings;

pub async fn run(settings: Settings, format: OutputFormat) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let ws = Workspace::open(settings).await?;
    let n = rebuild(&ws, &Bar::new()).await?;
    let ms = started.elapsed().as_millis() as u64;
    match format {
        OutputFormat::Json => print_json(&json!({"records": n, "elapsed_ms": ms}))?,
        OutputFormat::Text => println!("indexed {} records in {:.1} s", thousands(n), ms as f64 / 1000.0),
    }
    Ok(true)
}
