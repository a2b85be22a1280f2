//! `ehrqa chat --patient ID [model options]`: a conversation about one patient, one question a
//! line from stdin (a terminal or a pipe), each read against the ones before. On a terminal the
//! model's text streams as it comes; `--format json` prints one answer per line (JSON Lines),
//! as the REST API's conversation answers. An empty line is skipped; `/quit` or the end of
//! input ends it.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::ask::{print_text, AnswerArgs, Session};
use super::output::OutputFormat;
use super::today;
use crate::answer::{self, AskOptions};
use crate::conversation::{Conversation, TurnAnswer};
use crate::ingest::Workspace;
use crate::llm::{Generator, Tokenizer};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub patient: String,
    #[command(flatten)]
    pub answer: AnswerArgs,
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let Session { tokenizer, ws, generator, opts } =
        Session::open(&settings, &args.patient, &args.answer).await?;
    let mut conv = Conversation::new("cli", &args.patient);
    let interactive = std::io::stdin().is_terminal();
    let mut out = std::io::stdout();
    loop {
        if interactive {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        if tokio::task::block_in_place(|| std::io::stdin().lock().read_line(&mut line))? == 0 {
            break;
        }
        let q = line.trim();
        if q.is_empty() {
            continue;
        }
        if q == "/quit" || q == "/exit" {
            break;
        }
        let opts = AskOptions { today: today(), ..opts };
        let turn = turn(&ws, &tokenizer, generator.as_ref(), &mut conv, q, opts, format).await?;
        match format {
            OutputFormat::Json => {
                writeln!(out, "{}", serde_json::to_string(&turn)?)?;
                out.flush()?;
            }
            OutputFormat::Text => {
                print_text(&turn.answer);
                eprintln!(
                    "[turn {}; {} of {} prompt tokens cached{}]",
                    turn.turn,
                    turn.cached_tokens,
                    turn.answer.usage.prompt_tokens,
                    if turn.context_kept { "; same context" } else { "" }
                );
            }
        }
    }
    Ok(true)
}

/// One question of the conversation, its text streamed to stderr on a terminal.
async fn turn(
    ws: &Workspace,
    tokenizer: &Tokenizer,
    generator: &dyn Generator,
    conv: &mut Conversation,
    question: &str,
    opts: AskOptions,
    format: OutputFormat,
) -> anyhow::Result<TurnAnswer> {
    let mut plan = tokio::task::block_in_place(|| conv.prepare(&ws.index, tokenizer, question, opts))
        .context("retrieval failed")?;
    answer::attach_images(&mut plan.prep, &ws.store).await?;
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let streaming = format == OutputFormat::Text;
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
    let t = conv.answer(plan, generator, tx).await?;
    printer.await?;
    Ok(t)
}
