//! The command line: one file per command, each thin (parse, call the library, print).

mod bench;
mod ingest;
mod output;
mod patients;
mod progress;
mod reindex;
mod search;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use output::OutputFormat;

use crate::settings::{Settings, DEFAULT_MAX_INPUT_BYTES};

/// Answers questions about a patient's FHIR record with cited resources. Not for clinical use.
#[derive(Debug, Parser)]
#[command(name = "ehrqa", version, about)]
pub struct Cli {
    /// Directory holding the database and the search index.
    #[arg(long, global = true, env = "EHRQA_DATA_DIR", default_value = "./ehrqa-data")]
    pub data_dir: PathBuf,
    /// Output as human-readable text or as one JSON document on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Inputs larger than this many bytes are refused before being read.
    #[arg(long, global = true, env = "EHRQA_MAX_INPUT_BYTES", default_value_t = DEFAULT_MAX_INPUT_BYTES)]
    pub max_input_bytes: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest FHIR bundles, resources, arrays or NDJSON files (directories are searched).
    Ingest(ingest::Args),
    /// List the patients in the data directory.
    Patients,
    /// Search one patient's records.
    Search(search::Args),
    /// Rebuild the search index from the database.
    Reindex,
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::Bench),
}

impl Cli {
    fn settings(&self) -> Settings {
        Settings { data_dir: self.data_dir.clone(), max_input_bytes: self.max_input_bytes }
    }

    /// Runs the command; `Ok(false)` means it ran but some of its work failed (exit code 1).
    pub async fn run(self) -> anyhow::Result<bool> {
        let settings = self.settings();
        let format = self.format;
        match self.command {
            Command::Ingest(args) => ingest::run(settings, args, format).await,
            Command::Patients => patients::run(settings, format).await,
            Command::Search(args) => search::run(settings, args, format).await,
            Command::Reindex => reindex::run(settings, format).await,
            Command::Bench(b) => bench::run(settings, b, format).await,
        }
    }
}
