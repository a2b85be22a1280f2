//! `ehrqa ingest PATH...`

use std::path::PathBuf;

use super::output::{print_json, thousands, OutputFormat};
use super::progress::Bar;
use crate::ingest::{expand, ingest_files, IngestReport, Workspace};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories (searched recursively for .json, .ndjson and .jsonl).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Leave image attachments untranscribed (`ehrqa transcribe` does it later).
    #[arg(long)]
    pub no_transcribe: bool,
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let (files, unlistable) = expand(&args.paths);
    let counter = super::optional_counter(&settings);
    let ws = Workspace::open_with(settings, counter).await?;
    let mut report = ingest_files(&ws, files, &Bar::new()).await?;
    for u in unlistable {
        report.fail(u.path.display().to_string(), u.reason);
    }
    if !args.no_transcribe {
        super::transcribe::pending(&ws).await?;
    }
    report.images = ws.store.image_counts().await?.into_iter().collect();
    for f in &report.failed {
        eprintln!("error: {}: {}", f.path, f.error);
    }
    match format {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print_text(&report),
    }
    Ok(report.failed.is_empty())
}

fn print_text(r: &IngestReport) {
    println!(
        "ingested {} of {} inputs in {:.1} s ({} resources/s)",
        r.ingested,
        r.ingested + r.failed.len(),
        r.elapsed_ms as f64 / 1000.0,
        thousands(r.resources_per_sec as u64)
    );
    println!(
        "resources: {} (inserted {}, updated {}, unchanged {}, stale {}, duplicates {})",
        thousands(r.resources as u64),
        thousands(r.inserted as u64),
        thousands(r.updated as u64),
        thousands(r.unchanged as u64),
        r.stale,
        r.duplicates
    );
    for (t, n) in &r.by_type {
        println!("  {t:<28} {:>8}", thousands(*n as u64));
    }
    let refs = &r.references;
    println!("references in store: {}, unresolved {}", thousands(refs.total as u64), refs.unresolved);
    for (kind, n) in &refs.unresolved_by_kind {
        println!("  unresolved {kind:<12} {n:>8}");
    }
    if !r.normalisation_issues.is_empty() {
        println!("normalisation issues (kept raw):");
        for (kind, n) in &r.normalisation_issues {
            println!("  {kind:<40} {n:>8}");
        }
    }
    if !r.images.is_empty() {
        let counts: Vec<String> = r.images.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!("images in store: {}", counts.join(", "));
    }
    if !r.failed.is_empty() {
        println!("refused {} inputs (nothing of them was stored; reasons on stderr)", r.failed.len());
    }
}
