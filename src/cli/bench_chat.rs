//! `ehrqa bench chat --patient ID [model options] [--question Q ...]`: a conversation's prefill.
//! The first question prefills the instructions and the record; a follow-up on the same context
//! extends that prompt, and the local engine keeps the cached prefix, so it prefills only the
//! new turn. Reported per turn: prompt tokens, tokens taken from the cache, prefill time; and
//! the follow-ups' mean prefill time as a share of the first turn's. Every question goes to the
//! model, as with `--model-only`.

use serde::Serialize;

use super::ask::{AnswerArgs, Session};
use super::output::{print_json, OutputFormat};
use super::today;
use crate::answer::AskOptions;
use crate::conversation::Conversation;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub patient: String,
    #[command(flatten)]
    pub answer: AnswerArgs,
    /// The conversation's questions, in order (repeat the flag; default: an A1c and three
    /// follow-ups about it).
    #[arg(long = "question")]
    pub questions: Vec<String>,
}

const DEFAULT_QUESTIONS: &[&str] = &[
    "What was the latest hemoglobin A1c?",
    "And the one before?",
    "When was it measured?",
    "What was the value?",
];

#[derive(Serialize)]
struct ChatBench {
    model: String,
    turns: Vec<BenchTurn>,
    first_prefill_ms: f64,
    /// Mean over the follow-ups that kept the context.
    follow_up_prefill_ms: Option<f64>,
    /// `follow_up_prefill_ms / first_prefill_ms`.
    follow_up_share: Option<f64>,
}

#[derive(Serialize)]
struct BenchTurn {
    turn: usize,
    question: String,
    resolved_question: String,
    context_kept: bool,
    prompt_tokens: usize,
    cached_tokens: usize,
    prefilled_tokens: usize,
    prefill_ms: f64,
    decode_ms: f64,
    completion_tokens: usize,
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let Session { tokenizer, ws, generator, opts } =
        Session::open(&settings, &args.patient, &args.answer).await?;
    // Every turn goes to the model (none is answered from the computed facts alone), so that
    // every turn is prefilled.
    let opts = AskOptions { computed: false, ..opts };
    let questions: Vec<String> = if args.questions.is_empty() {
        DEFAULT_QUESTIONS.iter().map(|q| (*q).to_owned()).collect()
    } else {
        args.questions
    };
    let mut conv = Conversation::new("bench", &args.patient);
    let mut turns = Vec::new();
    for q in questions {
        let opts = AskOptions { today: today(), ..opts };
        let plan = tokio::task::block_in_place(|| conv.prepare(&ws.index, &tokenizer, &q, opts))?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let drain = crate::llm::generator::drain(rx);
        let t = conv.answer(plan, generator.as_ref(), tx).await?;
        let _ = drain.await;
        let u = t.answer.usage;
        let row = BenchTurn {
            turn: t.turn,
            question: q,
            resolved_question: t.resolved_question,
            context_kept: t.context_kept,
            prompt_tokens: u.prompt_tokens,
            cached_tokens: t.cached_tokens,
            prefilled_tokens: u.prompt_tokens - t.cached_tokens.min(u.prompt_tokens),
            prefill_ms: t.answer.timings.prefill_ms,
            decode_ms: t.answer.timings.decode_ms,
            completion_tokens: u.completion_tokens,
        };
        if format == OutputFormat::Text {
            println!(
                "turn {}: {} prompt tokens, {} cached, {} prefilled in {:.0} ms{} ({:?})",
                row.turn,
                row.prompt_tokens,
                row.cached_tokens,
                row.prefilled_tokens,
                row.prefill_ms,
                if row.context_kept { ", same context" } else { "" },
                row.resolved_question
            );
        }
        turns.push(row);
    }
    let first_prefill_ms = turns.first().map_or(0.0, |t| t.prefill_ms);
    let follow: Vec<f64> = turns.iter().skip(1).filter(|t| t.context_kept).map(|t| t.prefill_ms).collect();
    let follow_up_prefill_ms = (!follow.is_empty()).then(|| follow.iter().sum::<f64>() / follow.len() as f64);
    let out = ChatBench {
        model: generator.model_name().to_owned(),
        follow_up_share: follow_up_prefill_ms.map(|f| f / first_prefill_ms.max(1e-9)),
        first_prefill_ms,
        follow_up_prefill_ms,
        turns,
    };
    match format {
        OutputFormat::Json => print_json(&out)?,
        OutputFormat::Text => match (out.follow_up_prefill_ms, out.follow_up_share) {
            (Some(f), Some(s)) => println!(
                "first turn prefill {:.0} ms; follow-ups {:.0} ms on average = {:.1}% of the first",
                out.first_prefill_ms,
                f,
                s * 100.0
            ),
            _ => println!("first turn prefill {:.0} ms; no follow-up kept the context", out.first_prefill_ms),
        },
    }
    Ok(true)
}
