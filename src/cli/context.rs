//! `ehrqa context --patient ID --question "..." [--budget TOKENS]`

use anyhow::{bail, Context as _};

use super::output::{print_json, OutputFormat};
use super::{load_tokenizer, today};
use crate::fhir::reference::is_valid_id;
use crate::ingest::Workspace;
use crate::retrieval::{assemble, ContextOptions};
use crate::settings::Settings;
use crate::tokens::TokenBudget;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub patient: String,
    #[arg(long)]
    pub question: String,
    /// Token budget of the context (256 to 131072; `8k`, `128k` accepted).
    #[arg(long, default_value_t = TokenBudget::DEFAULT)]
    pub budget: TokenBudget,
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    if !is_valid_id(&args.patient) {
        bail!("invalid patient id {:?}", args.patient);
    }
    let tokenizer = load_tokenizer(&settings)?;
    let ws = Workspace::open(settings).await?;
    if !ws.store.patient_exists(&args.patient).await? {
        bail!("unknown patient {}", args.patient);
    }
    let opts = ContextOptions { budget: args.budget, today: today() };
    let ctx =
        tokio::task::block_in_place(|| assemble(&ws.index, &tokenizer, &args.patient, &args.question, opts))
            .context("context assembly failed")?;
    match format {
        OutputFormat::Json => print_json(&ctx)?,
        OutputFormat::Text => {
            print!("{}", ctx.text);
            eprintln!("({} of {} tokens, {} items)", ctx.tokens, ctx.budget, ctx.items.len());
        }
    }
    Ok(true)
}
