//! `ehrqa bench ingest PATH...`: end-to-end ingest throughput into a fresh data directory.
//! `ehrqa bench context --patient ID --budget N`: context assembly latency.
//! `ehrqa bench chat --patient ID`: a conversation's follow-up prefill against its first turn's
//! (`bench_chat.rs`).

use std::path::PathBuf;

use serde::Serialize;

use super::output::{print_json, thousands, OutputFormat};
use crate::ingest::{expand, ingest_files, NoProgress, Workspace};
use crate::retrieval::{assemble, ContextOptions};
use crate::settings::{DatabaseUrl, Settings};
use crate::tokens::TokenBudget;

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
    /// Local model speed: prefill tokens/s for prompts of the given lengths, decode tokens/s.
    Generate {
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        #[arg(long, value_delimiter = ',', default_value = "1000,8000")]
        prompt_tokens: Vec<usize>,
        #[arg(long, default_value_t = 64)]
        decode: usize,
        /// Text whose first tokens make the prompts (repeated if short); by default the clinical
        /// text `tools/reference/llama_cpp_bench.py` also uses.
        #[arg(long)]
        prompt_file: Option<std::path::PathBuf>,
    },
    /// A conversation's prefill with the local model: the first turn's against follow-ups',
    /// which reuse the cached prompt prefix.
    Chat(super::bench_chat::Args),
    /// HTTP load on a running `ehrqa serve`: requests/s and latency percentiles.
    Http(super::load::Args),
    /// Context assembly latency for one patient: every question of a fixed set, RUNS times.
    Context {
        #[arg(long)]
        patient: String,
        #[arg(long, default_value_t = TokenBudget::DEFAULT)]
        budget: TokenBudget,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

/// Prefill and decode speed of the local model on prompts of given lengths, and peak memory.
#[derive(Serialize)]
struct GenerateBench {
    model: String,
    threads: usize,
    runs: Vec<GenerateRun>,
    peak_rss_mb: f64,
}

#[derive(Serialize)]
struct GenerateRun {
    prompt_tokens: usize,
    prefill_tokens_per_sec: f64,
    decode_tokens: usize,
    decode_tokens_per_sec: f64,
}

/// The benchmark's default prompt text (shared with `tools/reference/llama_cpp_bench.py`).
const BENCH_PROMPT: &str = include_str!("../../fixtures/bench/prompt.txt");

async fn generate(
    settings: Settings,
    model: Option<std::path::PathBuf>,
    lengths: Vec<usize>,
    decode: usize,
    prompt_file: Option<std::path::PathBuf>,
    format: OutputFormat,
) -> anyhow::Result<bool> {
    let path = model
        .or_else(|| {
            Some(settings.cache_dir.join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf"))
                .filter(|p| p.is_file())
        })
        .ok_or_else(|| anyhow::anyhow!("pass --model PATH (or run scripts/setup for the test model)"))?;
    let tokenizer = super::load_tokenizer(&settings)?;
    let mut net = crate::llm::gemma3::load(&path, &candle_core::Device::Cpu)?;
    let text = match prompt_file {
        Some(p) => std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => BENCH_PROMPT.to_owned(),
    };
    anyhow::ensure!(!text.trim().is_empty(), "the prompt text is empty");
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let mut all = tokenizer.encode(&text, true)?;
    let again = tokenizer.encode(&text, false)?;
    while all.len() < longest {
        all.extend_from_slice(&again);
    }
    // Warm-up, untimed (allocations, first touches), as the llama.cpp script does.
    net.forward(&all[..all.len().min(256)], false)?;
    let mut runs = Vec::new();
    for n in lengths {
        anyhow::ensure!(n <= all.len(), "prompts up to {} tokens", all.len());
        net.reset();
        let t = std::time::Instant::now();
        let mut logits = net.forward(&all[..n], false)?.squeeze(0)?.to_vec1::<f32>()?;
        let prefill = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        for _ in 0..decode {
            let next = crate::llm::sampling::argmax(&logits);
            logits = net.forward(&[next], false)?.squeeze(0)?.to_vec1::<f32>()?;
        }
        let dec = t.elapsed().as_secs_f64();
        runs.push(GenerateRun {
            prompt_tokens: n,
            prefill_tokens_per_sec: n as f64 / prefill,
            decode_tokens: decode,
            decode_tokens_per_sec: decode as f64 / dec.max(1e-9),
        });
    }
    let out = GenerateBench {
        model: path.display().to_string(),
        threads: candle_core::utils::get_num_threads(),
        runs,
        peak_rss_mb: peak_rss_mb(),
    };
    match format {
        OutputFormat::Json => print_json(&out)?,
        OutputFormat::Text => {
            for r in &out.runs {
                println!(
                    "{} prompt tokens: prefill {:.1} tokens/s, decode {:.1} tokens/s",
                    r.prompt_tokens, r.prefill_tokens_per_sec, r.decode_tokens_per_sec
                );
            }
            println!("peak memory {:.0} MB ({} threads)", out.peak_rss_mb, out.threads);
        }
    }
    Ok(true)
}

/// The process's peak resident memory (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Questions of every kind the evaluation has, phrased generically so they fit any patient.
const BENCH_QUESTIONS: &[&str] = &[
    "What was the latest hemoglobin A1c?",
    "What was the blood pressure on 2019-03-02?",
    "What was the highest glucose ever recorded?",
    "How has the weight changed over time?",
    "When was the patient first diagnosed with hypertension?",
    "Has the patient ever had a colonoscopy?",
    "What medications is the patient currently taking?",
    "Any allergies?",
    "When was the last flu shot?",
    "How many visits in 2018?",
    "What was the chief complaint at the last visit?",
    "What is the latest troponin?",
];

#[derive(Serialize)]
struct ContextBench {
    patient: String,
    budget: usize,
    assemblies: usize,
    mean_tokens: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn context(
    settings: Settings,
    patient: String,
    budget: TokenBudget,
    runs: usize,
    format: OutputFormat,
) -> anyhow::Result<bool> {
    let tokenizer = super::load_tokenizer(&settings)?;
    let ws = Workspace::open(settings).await?;
    anyhow::ensure!(ws.store.patient_exists(&patient).await?, "unknown patient {patient}");
    let opts = ContextOptions { budget, today: super::today() };
    let mut ms = Vec::new();
    let mut tokens = 0;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        for _ in 0..runs.max(1) {
            for q in BENCH_QUESTIONS {
                let started = std::time::Instant::now();
                let ctx = assemble(&ws.index, &tokenizer, &patient, q, opts)?;
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
                tokens += ctx.tokens;
            }
        }
        Ok(())
    })?;
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    let out = ContextBench {
        patient,
        budget: budget.get(),
        assemblies: ms.len(),
        mean_tokens: tokens as f64 / ms.len() as f64,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: *ms.last().expect("at least one run"),
    };
    match format {
        OutputFormat::Json => print_json(&out)?,
        OutputFormat::Text => println!(
            "context assembly at {} tokens: {} assemblies, mean {:.0} tokens, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            out.budget, out.assemblies, out.mean_tokens, out.p50_ms, out.p99_ms, out.max_ms
        ),
    }
    Ok(true)
}

#[derive(Serialize)]
struct IngestBench {
    /// `sqlite` or `postgres`.
    database: &'static str,
    resources: usize,
    inputs: usize,
    runs: Vec<f64>,
    best_resources_per_sec: f64,
    median_resources_per_sec: f64,
}

pub async fn run(settings: Settings, bench: Bench, format: OutputFormat) -> anyhow::Result<bool> {
    let (paths, runs) = match bench {
        Bench::Ingest { paths, runs } => (paths, runs),
        Bench::Context { patient, budget, runs } => {
            return context(settings, patient, budget, runs, format).await
        }
        Bench::Http(args) => return super::load::run(args, format).await,
        Bench::Chat(args) => return super::bench_chat::run(settings, args, format).await,
        Bench::Generate { model, prompt_tokens, decode, prompt_file } => {
            return generate(settings, model, prompt_tokens, decode, prompt_file, format).await
        }
    };
    let (files, bad) = expand(&paths);
    anyhow::ensure!(bad.is_empty(), "cannot read {}", bad[0].path.display());
    let mut rates = Vec::new();
    let mut last = None;
    for run in 0..runs.max(1) {
        let dir = scratch_dir(&settings, run)?;
        // On PostgreSQL each run gets an empty database of its own on the same server.
        let scratch = match &settings.database_url {
            Some(url) => {
                let name = format!("ehrqa_bench_{}_{run}", std::process::id());
                Some(crate::store::scratch::create_scratch(url.as_str(), &name).await?)
            }
            None => None,
        };
        let database_url = scratch.as_ref().map(|s| DatabaseUrl(s.url.clone()));
        let counter = super::optional_counter(&settings);
        let run_settings = Settings { data_dir: dir.clone(), database_url, ..settings.clone() };
        let ws = Workspace::open_with(run_settings, counter).await?;
        let report = ingest_files(&ws, files.clone(), &NoProgress).await?;
        drop(ws);
        std::fs::remove_dir_all(&dir)?;
        if let Some(scratch) = scratch {
            scratch.drop_scratch().await?;
        }
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
                "  prepare {:.0} ms (loader threads, summed), store {:.0} ms, index {:.0} ms, commit {:.0} ms",
                t.prepare_ms, t.store_ms, t.index_ms, t.commit_ms
            );
        }
        last = Some(report);
    }
    let report = last.expect("at least one run");
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let out = IngestBench {
        database: if settings.database_url.is_some() { "postgres" } else { "sqlite" },
        resources: report.resources,
        inputs: report.ingested,
        best_resources_per_sec: *sorted.last().expect("one run"),
        median_resources_per_sec: sorted[sorted.len() / 2],
        runs: rates,
    };
    match format {
        OutputFormat::Json => print_json(&out)?,
        OutputFormat::Text => println!(
            "best {} resources/s, median {} resources/s ({})",
            thousands(out.best_resources_per_sec as u64),
            thousands(out.median_resources_per_sec as u64),
            out.database
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
