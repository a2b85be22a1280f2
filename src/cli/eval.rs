//! `ehrqa eval questions|retrieval`

use std::path::PathBuf;

use anyhow::Context as _;

use super::ask::AnswerArgs;
use super::output::{print_json, OutputFormat};
use super::progress::Bar;
use super::{load_tokenizer, today};
use crate::eval::{self, questions, AnswersReport, RetrievalReport};
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
    /// The whole ask pipeline over a question set: accuracy, citations, abstention, latency.
    Answers {
        #[arg(long)]
        questions: PathBuf,
        /// At most this many questions (the first ones of the set).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        answer: AnswerArgs,
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
        Eval::Answers { questions, limit, answer } => {
            let mut set = questions::read(&questions)?;
            set.truncate(limit.unwrap_or(usize::MAX));
            let tokenizer = load_tokenizer(&settings)?;
            let ws = Workspace::open(settings.clone()).await?;
            let generator = answer.model.load(&settings)?;
            let opts = answer.options(generator.as_ref());
            let report =
                eval::answers::evaluate(&ws, &tokenizer, generator.as_ref(), &set, opts, &Bar::new())
                    .await
                    .context("evaluation failed")?;
            match format {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Text => print_answers(&report),
            }
            Ok(true)
        }
    }
}

fn print_answers(r: &AnswersReport) {
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    println!("answers by {} at a {}-token budget ({} questions)", r.model, r.budget, r.overall.questions);
    println!("| kind | n | accuracy | computed | citation precision | citation recall | abstained | invalid citations | removed sentences | unheld values | facts alone | latency ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let row = |name: &str, s: &eval::answers::AnswerScore| {
        println!(
            "| {name} | {} | {:.1}% | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            s.questions,
            s.accuracy * 100.0,
            s.computed,
            pct(s.citation_precision),
            pct(s.citation_recall),
            s.abstained,
            pct(s.invalid_citation_rate),
            s.removed_sentences,
            s.unheld_values,
            s.facts_accuracy
                .map_or_else(|| "-".to_owned(), |a| format!("{:.1}% of {}", a * 100.0, s.facts_covered)),
            s.latency_ms_mean
        );
    };
    for k in &r.kinds {
        row(&k.kind.name(), &k.score);
    }
    row("**computed kinds**", &r.computed_kinds);
    row("**overall**", &r.overall);
    println!(
        "correct abstention {}; false abstention {}; latency p50 {:.0} ms, p90 {:.0} ms",
        pct(r.correct_abstention),
        pct(r.false_abstention),
        r.latency_ms_p50,
        r.latency_ms_p90
    );
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
