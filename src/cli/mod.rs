//! The command line: one file per command, each thin (parse, call the library, print).

mod ask;
mod bench;
mod bench_chat;
mod chat;
mod check;
mod context;
mod eval;
mod generate;
mod ingest;
mod key;
mod load;
mod model;
mod output;
mod patients;
mod progress;
mod reindex;
mod search;
mod serve;
mod sync;
mod transcribe;

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
    /// A PostgreSQL database shared by several replicas (`postgres://user:password@host:port/db`;
    /// prefer the environment, which keeps the password off the command line). Without it the
    /// database is SQLite in the data directory; with it the data directory keeps this
    /// replica's search index only.
    #[arg(long, global = true, env = "EHRQA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Output as human-readable text or as one JSON document on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Inputs larger than this many bytes are refused before being read.
    #[arg(long, global = true, env = "EHRQA_MAX_INPUT_BYTES", default_value_t = DEFAULT_MAX_INPUT_BYTES)]
    pub max_input_bytes: u64,
    /// The Gemma 3 tokenizer.json (default: the one `scripts/setup` caches).
    #[arg(long, global = true, env = "EHRQA_TOKENIZER")]
    pub tokenizer: Option<PathBuf>,
    /// Cache of downloaded tokenizer and model files (default `~/.cache/ehrqa`).
    #[arg(long, global = true, env = "EHRQA_CACHE")]
    pub cache_dir: Option<PathBuf>,
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
    /// Check that the database and the index agree and that inputs were stored whole.
    Check(check::Args),
    /// Transcribe image attachments still waiting (Tesseract OCR, or a vision model).
    Transcribe(transcribe::Args),
    /// Assemble the evidence for a question within a token budget.
    Context(context::Args),
    /// Answer a question about one patient, citing the resources the answer rests on.
    Ask(ask::Args),
    /// A conversation about one patient: questions from stdin, one a line, follow-ups read
    /// against the ones before.
    Chat(chat::Args),
    /// Generate text with the local model or a remote server (streams to stdout).
    Generate(generate::Args),
    /// Serve the REST API.
    Serve(Box<serve::Args>),
    /// Pull patients from a FHIR server (HAPI and others).
    Sync(sync::Args),
    /// API keys for `serve`, and signing keys for SMART Backend Services.
    #[command(subcommand)]
    Key(key::Key),
    /// Evaluations: generate question sets, measure retrieval.
    #[command(subcommand)]
    Eval(eval::Eval),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::Bench),
}

impl Command {
    /// Whether the allocator should keep freed memory (`main.rs`): the command generates with a
    /// model, or it is a batch of ingest that exits when done (a service keeps returning
    /// memory).
    pub fn keeps_freed_memory(&self) -> bool {
        matches!(
            self,
            Command::Ingest(_)
                | Command::Reindex
                | Command::Bench(bench::Bench::Ingest { .. })
                | Command::Ask(_)
                | Command::Chat(_)
                | Command::Generate(_)
                | Command::Bench(bench::Bench::Generate { .. })
                | Command::Bench(bench::Bench::Chat(_))
                | Command::Eval(eval::Eval::Answers { .. })
        )
    }

    /// Whether the command ingests in bulk and exits (`main.rs` turns transparent huge pages off
    /// for it).
    pub fn ingests_in_bulk(&self) -> bool {
        matches!(self, Command::Ingest(_) | Command::Reindex | Command::Bench(bench::Bench::Ingest { .. }))
    }
}

impl Cli {
    fn settings(&self) -> Settings {
        Settings {
            data_dir: self.data_dir.clone(),
            // An empty EHRQA_DATABASE_URL means none (a shell that clears it leaves it set).
            database_url: self
                .database_url
                .clone()
                .filter(|u| !u.is_empty())
                .map(crate::settings::DatabaseUrl),
            max_input_bytes: self.max_input_bytes,
            cache_dir: self.cache_dir.clone().unwrap_or_else(crate::settings::default_cache_dir),
            tokenizer: self.tokenizer.clone(),
            write_wait: std::time::Duration::ZERO,
        }
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
            Command::Check(args) => check::run(settings, args, format).await,
            Command::Transcribe(args) => transcribe::run(settings, args, format).await,
            Command::Context(args) => context::run(settings, args, format).await,
            Command::Eval(cmd) => eval::run(settings, cmd, format).await,
            Command::Ask(args) => ask::run(settings, args, format).await,
            Command::Chat(args) => chat::run(settings, args, format).await,
            Command::Serve(args) => serve::run(settings, *args).await,
            Command::Sync(args) => sync::run(settings, args, format).await,
            Command::Key(cmd) => key::run(cmd, format),
            Command::Generate(args) => generate::run(settings, args).await,
            Command::Bench(b) => bench::run(settings, b, format).await,
        }
    }
}

/// Loads the Gemma 3 tokenizer named by the settings (or cached by `scripts/setup`).
fn load_tokenizer(settings: &Settings) -> anyhow::Result<crate::llm::Tokenizer> {
    let path = crate::llm::tokenizer::locate(settings.tokenizer.as_deref(), &settings.cache_dir)?;
    Ok(crate::llm::Tokenizer::from_file(&path)?)
}

/// The tokenizer as a counter for ingest, when one is available (a warning otherwise: token
/// counts are then computed when contexts are assembled).
fn optional_counter(settings: &Settings) -> Option<std::sync::Arc<dyn crate::tokens::TokenCounter>> {
    match load_tokenizer(settings) {
        Ok(t) => Some(std::sync::Arc::new(t)),
        Err(e) => {
            tracing::warn!("ingesting without token counts: {e}");
            None
        }
    }
}

/// Today, UTC, in seconds.
fn today() -> i64 {
    crate::clock::now()
}

/// The remote OpenAI-compatible backend (`--llm-url`); the key comes from a file or
/// `EHRQA_LLM_KEY`, never from a flag's value.
fn remote_generator(
    url: &str,
    model: Option<&str>,
    key_file: Option<&std::path::Path>,
    vision: bool,
) -> anyhow::Result<std::sync::Arc<dyn crate::llm::Generator>> {
    let Some(model) = model else {
        anyhow::bail!("--llm-url needs --llm-model NAME (the model the server serves)");
    };
    let mut cfg = crate::llm::RemoteConfig::new(url, model);
    cfg.vision = vision;
    cfg.api_key = match key_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("EHRQA_LLM_KEY").ok().filter(|k| !k.is_empty()),
    };
    Ok(std::sync::Arc::new(crate::llm::RemoteGenerator::new(cfg)?))
}
