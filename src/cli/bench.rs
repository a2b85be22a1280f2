//! `ehrqa bench ingest PATH...`: end-to-end ingest throughput into a fresh data directory.

use std::path::PathBuf;

use serde::Serialize;

use super::output::{print_json, thousands, OutputFormat};
use crate::ingest::{expand, ingest_files, NoProgress, Workspace};
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Ingest PATHs into a fresh, temporary data directory and report resources per second.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How many fresh runs to make (the best and the median are reported).
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
}

#[derive(Serialize)]
struct IngestBench {
    resources: usize,
    inputs: usize,
    runs: Vec<f64>,
    best_resources_per_sec: f64,
    median_resources_per_sec: f64,
}

pub async fn run(settings: Settings, bench: Bench, format: OutputFormat) -> anyhow::Result<bool> {
    let Bench::Ingest { paths, runs } = bench;
    let (files, bad) = expand(&paths);
    anyhow::ensure!(bad.is_empty(), "cannot read {}", bad[0].path.display());
    let mut rates = Vec::new();
    let mut last = None;
    for run in 0..runs.max(1) {
        let dir = scratch_dir(&settings, run)?;
        let counter = super::optional_counter(&settings);
        let ws =
            Workspace::open_with(Settings { data_dir: dir.clone(), ..settings.clone() }, counter).await?;
        let report = ingest_files(&ws, files.clone(), &NoProgress).await?;
        drop(ws);
        std::fs::remove_dir_all(&dir)?;
        anyhow::ensure!(report.failed.is_empty(), "{}: {}", report.failed[0].path, report.failed[0].error);
        rates.push(report.resources_per_sec);
        if format == OutputFormat::Text {
            println!(
                "run {}: {} resources in {:.2} s = {} resources/s",
                run + 1,
                thousands(report.resources as u64),
                report.elapsed_ms as f64 / 1000.0,
                thousands(report.resources_per_sec as u64)
            );
            let t = &report.timings;
            println!(
                "  prepare {:.0} ms (reader thread), store {:.0} ms, index {:.0} ms, commit {:.0} ms",
                t.prepare_ms, t.store_ms, t.index_ms, t.commit_ms
            );
        }
        last = Some(report);
    }
    let report = last.expect("at least one run");
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let out = IngestBench {
        resources: report.resources,
        inputs: report.ingested,
        best_resources_per_sec: *sorted.last().expect("one run"),
        median_resources_per_sec: sorted[sorted.len() / 2],
        runs: rates,
    };
    match format {
        OutputFormat::Json => print_json(&out)?,
        OutputFormat::Text => println!(
            "best {} resources/s, median {} resources/s",
            thousands(out.best_resources_per_sec as u64),
            thousands(out.median_resources_per_sec as u64)
        ),
    }
    Ok(true)
}

/// A fresh directory beside the configured data directory, never the data directory itself.
fn scratch_dir(settings: &Settings, run: usize) -> anyhow::Result<PathBuf> {
    let base = settings.data_dir.with_extension(format!("bench-{}-{run}", std::process::id()));
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    Ok(base)
}
