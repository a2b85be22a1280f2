//! What every handler shares.

use std::sync::Arc;

use super::auth::{Auth, KeyId};
use super::metrics::Metrics;
use super::preparation::PreparationBudget;
use super::queue::GenerationQueue;
use super::sessions::Sessions;
use super::subscriptions::Subscriptions;
use crate::answer::PromptStyle;
use crate::conversation::Conversations;
use crate::ingest::Workspace;
use crate::llm::{Generator, Tokenizer};
use crate::sync::smart::{Launches, SmartClients};
use crate::sync::ServerList;
use crate::tokens::TokenBudget;

/// The model answers come from, and how it is prompted.
#[derive(Clone)]
pub struct Model {
    pub generator: Arc<dyn Generator>,
    pub style: PromptStyle,
}

/// Defaults for requests that do not say.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body (bundles), bytes.
    pub max_body: usize,
    pub default_budget: TokenBudget,
    pub default_max_tokens: usize,
    /// Report images shown with a question to a model that sees images.
    pub images: usize,
}

pub struct AppState {
    pub ws: Arc<Workspace>,
    pub tokenizer: Arc<Tokenizer>,
    /// `None` when no model could be loaded: `ask` then answers 503 and `/readyz` says why.
    pub model: Option<Model>,
    pub queue: GenerationQueue,
    pub auth: Auth,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Bytes of posted input in preparation at once (`preparation`).
    pub preparing: PreparationBudget,
    /// Conversations in memory, each owned by the key that opened it.
    pub conversations: Conversations<KeyId>,
    /// The FHIR servers `/v1/sync` may fetch from (`--sync-server`); none: sync is off.
    pub sync_servers: ServerList,
    /// The servers the service subscribes to (`--subscribe-to`), when any.
    pub subscriptions: Option<Arc<Subscriptions>>,
    /// The servers that may launch the service with SMART (`--smart-client`), and the launches
    /// under way.
    pub smart_clients: SmartClients,
    pub launches: Launches,
    /// Sessions SMART launches opened.
    pub sessions: Sessions,
}
