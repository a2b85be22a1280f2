//! `ehrqa ask --patient ID [--budget N] [model options] [--format json] "question"`: a cited
//! answer. On a terminal the model's text streams as it comes, then the checked answer and its
//! citations follow; `--format json` prints the answer contract only.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use tokio::sync::mpsc;

use super::model::ModelArgs;
use super::output::{print_json, OutputFormat};
use super::{load_tokenizer, today};
use crate::answer::{self, Answer, AskOptions, PromptStyle};
use crate::fhir::reference::is_valid_id;
use crate::ingest::Workspace;
use crate::llm::{Generator, Tokenizer};
use crate::settings::Settings;
use crate::tokens::TokenBudget;

/// What answering needs besides the question: the model, the budget, the prompt style.
#[derive(Debug, Clone, clap::Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Tokens of evidence in the prompt (256 to 131072; `8k`, `128k` accepted).
    #[arg(long, default_value_t = TokenBudget::DEFAULT)]
    pub budget: TokenBudget,
    /// How the model is prompted (default: chat for instruction-tuned models, completion for base
    /// models, as the model's metadata says).
    #[arg(long, value_enum)]
    pub prompt_style: Option<PromptStyle>,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Report images shown to a model that sees images (each takes 256 tokens of the budget).
    #[arg(long, default_value_t = 1)]
    pub images: usize,
    /// Send every question to the model, even those the computed facts answer (to evaluate the
    /// model alone).
    #[arg(long)]
    pub model_only: bool,
}

impl AnswerArgs {
    pub fn options(&self, generator: &dyn Generator) -> AskOptions {
        let style = self.prompt_style.unwrap_or(if generator.instruction_tuned() {
            PromptStyle::Chat
        } else {
            PromptStyle::Completion
        });
        let image_slots = if generator.sees_images() { self.images } else { 0 };
        AskOptions {
            budget: self.budget,
            today: today(),
            style,
            max_tokens: self.max_tokens,
            image_slots,
            computed: !self.model_only,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub patient: String,
    #[command(flatten)]
    pub answer: AnswerArgs,
    pub question: String,
}

/// What every command that answers questions about one patient opens first: the tokenizer, the
/// data directory (the patient must be in it), the model and the answer options.
pub struct Session {
    pub tokenizer: Tokenizer,
    pub ws: Workspace,
    pub generator: Arc<dyn Generator>,
    pub opts: AskOptions,
}

impl Session {
    pub async fn open(settings: &Settings, patient: &str, args: &AnswerArgs) -> anyhow::Result<Self> {
        if !is_valid_id(patient) {
            bail!("invalid patient id {patient:?}");
        }
        let tokenizer = load_tokenizer(settings)?;
        let ws = Workspace::open(settings.clone()).await?;
        if !ws.store.patient_exists(patient).await? {
            bail!("unknown patient {patient}");
        }
        let generator = args.model.open(settings)?;
        let opts = args.options(generator.as_ref());
        Ok(Self { tokenizer, ws, generator, opts })
    }
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let Session { tokenizer, ws, generator, opts } =
        Session::open(&settings, &args.patient, &args.answer).await?;
    let answer = ask(&ws, &tokenizer, generator, &args.patient, &args.question, opts, format).await?;
    match format {
        OutputFormat::Json => print_json(&answer)?,
        OutputFormat::Text => print_text(&answer),
    }
    Ok(true)
}

async fn ask(
    ws: &Workspace,
    tokenizer: &Tokenizer,
    generator: Arc<dyn Generator>,
    patient: &str,
    question: &str,
    opts: AskOptions,
    format: OutputFormat,
) -> anyhow::Result<Answer> {
    let mut prep =
        tokio::task::block_in_place(|| answer::prepare(&ws.index, tokenizer, patient, question, opts))
            .context("retrieval failed")?;
    answer::attach_images(&mut prep, &ws.store).await?;
    let (tx, mut rx) = mpsc::channel::<String>(64);
    // The text streams to a person watching a terminal; a log or a pipe gets only the checked
    // answer, once.
    let streaming = format == OutputFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let printer = tokio::spawn(async move {
        let mut err = std::io::stderr();
        while let Some(piece) = rx.recv().await {
            if streaming {
                let _ = err.write_all(piece.as_bytes());
                let _ = err.flush();
            }
        }
        if streaming {
            let _ = writeln!(err);
        }
    });
    let answer = answer::answer(prep, generator.as_ref(), tx).await?;
    printer.await?;
    Ok(answer)
}

/// The checked answer, its citations, and the notice.
pub(super) fn print_text(a: &Answer) {
    println!("{}", a.answer);
    for (i, c) in a.citations.iter().enumerate() {
        println!("  [{}] {}: {}", i + 1, c.rref, c.text);
    }
    if !a.invalid_citations.is_empty() {
        println!("  (dropped citations not in the record: {})", a.invalid_citations.join(", "));
    }
    eprintln!(
        "[{}; {} prompt tokens, {} generated; load {:.0} ms, retrieval {:.0} ms, prefill {:.0} ms, decode {:.0} ms]\n{}",
        a.model,
        a.usage.prompt_tokens,
        a.usage.completion_tokens,
        a.timings.load_ms,
        a.timings.retrieval_ms,
        a.timings.prefill_ms,
        a.timings.decode_ms,
        a.notice
    );
}
