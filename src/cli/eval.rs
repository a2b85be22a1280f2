//! `ehrqa eval questions|retrieval`

use std::path::PathBuf;

use anyhow::Context as _;

use super::output::{print_json, OutputFormat};
use super::{load_tokenizer, today};
use crate::eval::{self, questions, RetrievalReport};
use crate::ingest::Workspace;
use crate::settings::Settings;
use crate::tokens::TokenBudget;

#[derive(Debug, clap::Subcommand)]
pub enum Eval {
    /// Generate an EHRQA-style question set (JSON Lines) from the patients in the data directory.
    Questions {
        #[arg(long)]
        out: PathBuf,
        /// Questions per kind per patient.
        #[arg(long, default_value_t = 1)]
        per_kind: usize,
        #[arg(long, default_value_t = 20261129)]
        seed: u64,
        /// Only these patients (default: all).
        #[arg(long = "patient")]
        patients: Vec<String>,
    },
    /// Evidence recall of assembled contexts over a question set, per question kind.
    Retrieval {
        #[arg(long)]
        questions: PathBuf,
        #[arg(long, default_value_t = TokenBudget::DEFAULT)]
        budget: TokenBudget,
    },
}

pub async fn run(settings: Settings, cmd: Eval, format: OutputFormat) -> anyhow::Result<bool> {
    match cmd {
        Eval::Questions { out, per_kind, seed, patients } => {
            let ws = Workspace::open(settings).await?;
            let set = eval::generate_set(&ws.store, &patients, per_kind, seed).await?;
            questions::write(&out, &set)?;
            eprintln!("wrote {} questions to {}", set.len(), out.display());
            Ok(true)
        }
        Eval::Retrieval { questions, budget } => {
            let set = questions::read(&questions)?;
            let tokenizer = load_tokenizer(&settings)?;
            let ws = Workspace::open(settings).await?;
            let report =
                tokio::task::block_in_place(|| eval::evaluate(&ws.index, &tokenizer, &set, budget, today()))
                    .context("evaluation failed")?;
            match format {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Text => print_table(&report),
            }
            Ok(true)
        }
    }
}

fn print_table(r: &RetrievalReport) {
    println!("evidence recall at a {}-token budget ({} questions)", r.budget, r.questions);
    println!("| kind | questions | recalled | recall |");
    println!("| --- | ---: | ---: | ---: |");
    for k in &r.kinds {
        println!("| {} | {} | {} | {:.1}% |", k.kind.name(), k.questions, k.recalled, k.recall * 100.0);
    }
    println!("| **overall** | {} | {} | {:.1}% |", r.questions, r.recalled, r.recall * 100.0);
    println!(
        "mean context {:.0} tokens; assembly latency p50 {:.1} ms, p99 {:.1} ms",
        r.mean_tokens, r.latency_ms_p50, r.latency_ms_p99
    );
}
