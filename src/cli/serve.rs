//! `ehrqa serve --bind ADDR [--api-keys FILE | --no-auth] [model options]`: the REST API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};

use super::ask::AnswerArgs;
use super::load_tokenizer;
use crate::conversation::{Conversations, StoreLimits};
use crate::ingest::Workspace;
use crate::server::auth::Auth;
use crate::server::metrics::Metrics;
use crate::server::preparation::PreparationBudget;
use crate::server::queue::GenerationQueue;
use crate::server::sessions::Sessions;
use crate::server::state::{AppState, Limits, Model};
use crate::server::subscriptions::{Subscriptions, Target};
use crate::settings::Settings;
use crate::sync::smart::{Launches, SmartClients};
use crate::sync::subscription::Criteria;
use crate::sync::{ServerList, COMPARTMENT_TYPES};

use super::sync::FhirAuthArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Keys file: lines `NAME sha256:HEX *|ID,ID` (`ehrqa key new` makes them). `EHRQA_API_KEY`
    /// adds one plain key allowed every patient.
    #[arg(long, env = "EHRQA_API_KEYS_FILE")]
    pub api_keys: Option<PathBuf>,
    /// Serve without keys (loopback addresses only).
    #[arg(long)]
    pub no_auth: bool,
    /// Serve without a model: questions answered from the record's computed facts are still
    /// answered; one that needs the model (and `model_only`, drafts) answers 503.
    #[arg(long)]
    pub no_model: bool,
    #[command(flatten)]
    pub answer: AnswerArgs,
    /// Conversations kept in memory (the least recently used is dropped to make room).
    #[arg(long, default_value_t = 1_000)]
    pub max_conversations: usize,
    /// Seconds a conversation is kept without a question.
    #[arg(long, default_value_t = 1_800)]
    pub conversation_idle: u64,
    /// Generations running at once.
    #[arg(long, default_value_t = 1)]
    pub concurrent_generations: usize,
    /// Questions waiting for a generation slot before new ones get 429.
    #[arg(long, default_value_t = 8)]
    pub queue: usize,
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Seconds a write (a posted bundle, a sync) waits while another process (`ehrqa ingest`)
    /// writes to the data directory, before it is answered 503 with `Retry-After`.
    #[arg(long, default_value_t = 5.0)]
    pub write_wait: f64,
    /// A FHIR server base URL that `POST /v1/sync` may sync from (repeat for several). The
    /// service fetches from no other server, and follows no link off that server's origin.
    #[arg(long = "sync-server", value_name = "URL")]
    pub sync_servers: Vec<String>,
    /// A FHIR server to stay in step with (repeat for several): rest-hook Subscriptions are made
    /// on it at start-up, each notification syncs the patient it names, and they are deleted at
    /// shutdown. Signed in to with the auth options below.
    #[arg(long = "subscribe-to", value_name = "URL")]
    pub subscribe_to: Vec<String>,
    /// Resource types subscribed to (R4 `criteria: Type?`; default: the patient compartment's
    /// clinical types).
    #[arg(long = "subscribe-type", value_name = "TYPE", value_delimiter = ',', requires = "subscribe_to")]
    pub subscribe_types: Vec<String>,
    /// Subscribe to these SubscriptionTopic URLs instead (the R4 topic-based backport), where the
    /// server offers them.
    #[arg(
        long = "subscribe-topic",
        value_name = "URL",
        requires = "subscribe_to",
        conflicts_with = "subscribe_types"
    )]
    pub subscribe_topics: Vec<String>,
    /// The URL the FHIR servers reach this service at (default: http://BIND); notifications go
    /// to its /v1/notifications.
    #[arg(long, value_name = "URL", requires = "subscribe_to")]
    pub public_url: Option<String>,
    /// Seconds between checks that each subscription is still active on its server.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub subscription_check: u64,
    /// The FHIR servers that may launch ehrqa with SMART (EHR launch or standalone): a JSON file
    /// `[{"issuer": URL, "client_id": ID, "redirect_uri": "https://HOST/smart/callback"}]`.
    #[arg(long, value_name = "FILE")]
    pub smart_client: Option<PathBuf>,
    #[command(flatten)]
    pub fhir_auth: FhirAuthArgs,
}

pub async fn run(mut settings: Settings, args: Args) -> anyhow::Result<bool> {
    settings.write_wait = std::time::Duration::try_from_secs_f64(args.write_wait)
        .map_err(|_| anyhow::anyhow!("--write-wait must be a number of seconds, not {}", args.write_wait))?;
    let auth = auth(&args)?;
    let sync_servers = ServerList::new(&args.sync_servers).map_err(anyhow::Error::msg)?;
    let subscriptions = subscriptions(&args)?;
    let smart_clients = match &args.smart_client {
        Some(path) => SmartClients::load(path).map_err(anyhow::Error::msg)?,
        None => SmartClients::default(),
    };
    let tokenizer = Arc::new(load_tokenizer(&settings)?);
    let model = if args.no_model {
        None
    } else {
        let generator =
            args.answer.model.load(&settings).context("loading the model (or pass --no-model)")?;
        let style = args.answer.options(generator.as_ref()).style;
        Some(Model { generator, style })
    };
    let counter: Arc<dyn crate::tokens::TokenCounter> = tokenizer.clone();
    let max_body = usize::try_from(settings.max_input_bytes).unwrap_or(usize::MAX);
    let ws = Workspace::open_with(settings, Some(counter)).await?;
    let state = AppState {
        ws: Arc::new(ws),
        tokenizer,
        model,
        queue: GenerationQueue::new(args.concurrent_generations, args.queue),
        auth,
        metrics: Metrics::default(),
        limits: Limits {
            max_body,
            default_budget: args.answer.budget,
            default_max_tokens: args.answer.max_tokens,
            images: args.answer.images,
        },
        // One largest input at a time, or several smaller ones side by side.
        preparing: PreparationBudget::new(max_body),
        conversations: Conversations::new(StoreLimits {
            max: args.max_conversations,
            idle: std::time::Duration::from_secs(args.conversation_idle),
        }),
        sync_servers,
        subscriptions: subscriptions.clone(),
        smart_clients,
        launches: Launches::default(),
        sessions: Sessions::default(),
    };
    eprintln!("ehrqa serving on http://{} (not for clinical use)", args.bind);
    crate::server::serve(state, args.bind, args.workers).await?;
    if let Some(subs) = subscriptions {
        eprintln!("deleting the subscriptions on the FHIR servers");
        subs.unsubscribe_all().await;
    }
    Ok(true)
}

/// The subscriptions asked for, checked before anything starts (they are made once the
/// service listens, since a server may call back at once).
fn subscriptions(args: &Args) -> anyhow::Result<Option<Arc<Subscriptions>>> {
    if args.subscribe_to.is_empty() {
        return Ok(None);
    }
    let auth = args.fhir_auth.server_auth()?;
    let criteria: Vec<Criteria> = if !args.subscribe_topics.is_empty() {
        args.subscribe_topics.iter().cloned().map(Criteria::Topic).collect()
    } else if !args.subscribe_types.is_empty() {
        args.subscribe_types.iter().cloned().map(Criteria::Type).collect()
    } else {
        COMPARTMENT_TYPES.iter().map(|t| Criteria::Type((*t).to_owned())).collect()
    };
    if let Some(bad) = args.subscribe_types.iter().find(|t| !crate::fhir::resource_type::is_known(t)) {
        bail!("--subscribe-type {bad:?} is not a FHIR resource type");
    }
    let mut targets = Vec::new();
    for url in &args.subscribe_to {
        let base = crate::sync::origin::normalise_base(url)
            .ok_or_else(|| anyhow::anyhow!("--subscribe-to {url:?} is not an http(s) base URL"))?;
        targets.push(Target { base, auth: auth.clone(), criteria: criteria.clone() });
    }
    let public = match &args.public_url {
        Some(url) => crate::sync::origin::normalise_base(url)
            .ok_or_else(|| anyhow::anyhow!("--public-url {url:?} is not an http(s) URL"))?,
        None => format!("http://{}", args.bind),
    };
    let endpoint = format!("{public}/v1/notifications");
    let every = std::time::Duration::from_secs(args.subscription_check.max(1));
    Ok(Some(Arc::new(Subscriptions::new(targets, endpoint, every)?)))
}

/// Keys are required except with `--no-auth` on a loopback address.
fn auth(args: &Args) -> anyhow::Result<Auth> {
    if args.no_auth {
        if !args.bind.ip().is_loopback() {
            bail!("--no-auth is only allowed on a loopback address, not {}", args.bind);
        }
        return Ok(Auth::Open);
    }
    let auth = Auth::load(args.api_keys.as_deref(), std::env::var("EHRQA_API_KEY").ok())?;
    if auth.is_empty() {
        bail!("no API keys: pass --api-keys FILE or set EHRQA_API_KEY (or --no-auth on a loopback address)");
    }
    Ok(auth)
}
