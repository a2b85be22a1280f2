//! `ehrqa check [INPUT...]`: the data directory is consistent, and each input given was stored
//! whole or not at all. Exit code 1 when it is not.

use std::path::PathBuf;

use super::output::{print_json, OutputFormat};
use crate::ingest::{check, expand, CheckReport, Workspace};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Inputs that were being ingested (files or directories): each must be whole or absent.
    pub inputs: Vec<PathBuf>,
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let ws = Workspace::open_as_found(settings, None).await?;
    let (files, _unlistable) = expand(&args.inputs);
    let report = check(&ws, &files).await?;
    match format {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print_text(&report),
    }
    Ok(report.ok)
}

fn print_text(r: &CheckReport) {
    if let Some(pid) = r.writer_active {
        println!("note: a writer is active (pid {pid}); what follows may change while it writes");
    }
    let d = &r.database;
    println!(
        "database: integrity {}, {} resources, {} ingests, {} images waiting for transcription",
        d.integrity, d.resources, d.ingests, d.pending_images
    );
    let ix = &r.index;
    println!(
        "index: {} (index at ingest {}, database at {}), {} documents, {} missing, {} extra",
        ix.state.replace('_', " "),
        ix.index_ingest,
        ix.database_ingest,
        ix.documents,
        ix.missing,
        ix.extra
    );
    if ix.state == "behind" {
        println!("  (the next writer, or `ehrqa serve`, indexes what is missing)");
    }
    let count = |s: &str| r.inputs.iter().filter(|i| i.state == s).count();
    if !r.inputs.is_empty() {
        println!(
            "inputs: {} whole, {} absent, {} half-stored, {} unreadable",
            count("whole"),
            count("absent"),
            count("partial"),
            count("unreadable")
        );
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    println!("{}", if r.ok { "ok" } else { "FAILED" });
}
