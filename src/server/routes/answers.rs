//! Context and answers for one patient. `ask` streams with `Accept: text/event-stream`: `token`
//! events while the model writes, then one `answer` event with the checked answer (or an `error`
//! event). A client that goes away cancels the generation.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::patient;
use crate::answer::{self, Answer, AnswerError, AskOptions, Prepared, PromptStyle};
use crate::llm::absent::NoModel;
use crate::llm::{Generator, LlmError};
use crate::retrieval::{assemble, Context, ContextOptions};
use crate::server::auth::Caller;
use crate::server::error::{ApiError, OperationOutcome};
use crate::server::metrics::Metrics;
use crate::server::state::{AppState, Model};
use crate::tokens::TokenBudget;

/// Longest question accepted, characters.
const MAX_QUESTION: usize = 2_000;
/// MedGemma 1.5's longest answer.
pub(super) const MAX_NEW_TOKENS: usize = 8_192;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ContextRequest {
    pub question: String,
    /// Tokens (256 to 131072; default 8192).
    pub budget: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AskRequest {
    pub question: String,
    /// Tokens of evidence (256 to 131072; default: the server's).
    pub budget: Option<usize>,
    /// Longest answer in tokens (default: the server's; at most 8192).
    pub max_tokens: Option<usize>,
    /// Send every question to the model, even those the computed facts answer (evaluation).
    #[serde(default)]
    pub model_only: bool,
}

pub(super) fn question(q: &str) -> Result<String, ApiError> {
    let q = q.trim();
    if q.is_empty() || q.chars().count() > MAX_QUESTION {
        return Err(ApiError::BadRequest(format!("question must be 1 to {MAX_QUESTION} characters")));
    }
    Ok(q.to_owned())
}

pub(super) fn budget(b: Option<usize>, default: TokenBudget) -> Result<TokenBudget, ApiError> {
    b.map_or(Ok(default), |b| TokenBudget::new(b).map_err(|e| ApiError::BadRequest(e.to_string())))
}

#[utoipa::path(post, operation_id = "assembleContext", path = "/v1/patients/{id}/context", params(("id" = String, Path)), request_body = ContextRequest,
    responses((status = 200, body = Context), (status = 400, body = OperationOutcome), (status = 404, body = OperationOutcome)))]
pub async fn context(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ContextRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let q = question(&body.question)?;
    let opts =
        ContextOptions { budget: budget(body.budget, TokenBudget::DEFAULT)?, today: crate::clock::now() };
    state.ws.store.audit(&caller.name, "context", Some(&id), Some(&q)).await?;
    let st = state.clone();
    let ctx = web::block(move || assemble(&st.ws.index, st.tokenizer.as_ref(), &id, &q, opts)).await??;
    Ok(HttpResponse::Ok().json(ctx))
}

#[utoipa::path(post, operation_id = "askQuestion", path = "/v1/patients/{id}/ask", params(("id" = String, Path)), request_body = AskRequest,
    responses(
        (status = 200, body = Answer, description = "The cited answer; with Accept: text/event-stream, `token` events then an `answer` event"),
        (status = 400, body = OperationOutcome), (status = 404, body = OperationOutcome),
        (status = 429, body = OperationOutcome, description = "Generation queue full; see Retry-After"),
        (status = 503, body = OperationOutcome, description = "No model is loaded and the question needs one (computed answers need none)")))]
pub async fn ask(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<AskRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let q = question(&body.question)?;
    let (model, opts) = model_and_options(&state, &body)?;
    state.ws.store.audit(&caller.name, "ask", Some(&id), Some(&q)).await?;
    respond(state, id, q, model, opts, &req).await
}

/// Answers `q` about patient `id` once a generation slot is free: the whole answer as JSON, or
/// with `Accept: text/event-stream` its tokens as they come and then the answer.
pub(super) async fn respond(
    state: web::Data<AppState>,
    id: String,
    q: String,
    model: Option<Model>,
    opts: AskOptions,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let slot = state.queue.enter().await?;
    let st = state.clone();
    let mut prep =
        web::block(move || answer::prepare(&st.ws.index, st.tokenizer.as_ref(), &id, &q, opts)).await??;
    let generator = generator(model, &prep)?;
    answer::attach_images(&mut prep, &state.ws.store).await?;
    let (tx, rx) = mpsc::channel::<String>(64);
    let st = state.clone();
    let task = tokio::spawn(async move {
        let _slot = slot;
        let a = answer::answer(prep, generator.as_ref(), tx).await;
        if let Ok(a) = &a {
            count_answer(&st, a);
        }
        a
    });
    if !wants_events(req) {
        let drain = crate::llm::generator::drain(rx);
        let a = task.await.map_err(|e| ApiError::Internal(e.to_string()))??;
        let _ = drain.await;
        return Ok(HttpResponse::Ok().json(a));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(events(rx, task)))
}

pub(super) fn wants_events(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// A running answer (a plain one, or a conversation's turn).
pub(super) type AnswerTask<T = Answer> = tokio::task::JoinHandle<Result<T, crate::answer::AnswerError>>;

/// `token` events as pieces arrive, then the final `answer` (or `error`). Dropping the stream
/// (the client went away) drops the receiver, which cancels the generation.
pub(super) fn events<T: serde::Serialize + Send + 'static>(
    rx: mpsc::Receiver<String>,
    task: AnswerTask<T>,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> {
    futures_util::stream::unfold((Some(rx), Some(task)), |(mut rx, mut task)| async move {
        if let Some(r) = rx.as_mut() {
            if let Some(piece) = r.recv().await {
                return Some((Ok(event("token", &serde_json::json!({ "text": piece }))), (rx, task)));
            }
            rx = None;
        }
        let t = task.take()?;
        let last = match t.await {
            Ok(Ok(a)) => event("answer", &a),
            Ok(Err(e)) => {
                let e = ApiError::from(e);
                event("error", &OperationOutcome::error("exception", e.to_string()))
            }
            Err(e) => event("error", &OperationOutcome::error("exception", e.to_string())),
        };
        Some((Ok(last), (rx, task)))
    })
}

fn event(name: &str, data: &impl serde::Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// The loaded model (`None` when the service runs without one) and the answer options an ask
/// request sets (`max_tokens`, `budget`, `model_only`), checked. Without a model, a question may
/// still be answered from the computed facts, unless the request asks for the model alone.
pub(super) fn model_and_options(
    state: &AppState,
    body: &AskRequest,
) -> Result<(Option<Model>, AskOptions), ApiError> {
    let model = state.model.clone();
    if model.is_none() && body.model_only {
        return Err(no_model());
    }
    let max_tokens = body.max_tokens.unwrap_or(state.limits.default_max_tokens);
    if !(1..=MAX_NEW_TOKENS).contains(&max_tokens) {
        return Err(ApiError::BadRequest(format!("max_tokens must be 1 to {MAX_NEW_TOKENS}")));
    }
    let opts = AskOptions {
        budget: budget(body.budget, state.limits.default_budget)?,
        today: crate::clock::now(),
        style: model.as_ref().map_or(PromptStyle::Completion, |m| m.style),
        max_tokens,
        image_slots: match &model {
            Some(m) if m.generator.sees_images() => state.limits.images,
            _ => 0,
        },
        computed: !body.model_only,
    };
    Ok((model, opts))
}

/// What generates the prepared answer: the loaded model, or, without one, `NoModel` when the
/// answer needs no model. A question that needs one is refused here, before a stream begins
/// (not as an `error` event after a 200).
pub(super) fn generator(model: Option<Model>, prep: &Prepared) -> Result<Arc<dyn Generator>, ApiError> {
    match model {
        Some(m) => Ok(m.generator),
        None if prep.answers_without_model() => Ok(Arc::new(NoModel)),
        None => Err(no_model()),
    }
}

/// The refusal of a question that needs the model the service runs without.
fn no_model() -> ApiError {
    AnswerError::Model(LlmError::NotLoaded).into()
}

/// An answer's share of the service's metrics.
pub(super) fn count_answer(state: &AppState, a: &Answer) {
    Metrics::add(&state.metrics.answers, 1);
    Metrics::add(&state.metrics.prompt_tokens, a.usage.prompt_tokens as u64);
    Metrics::add(&state.metrics.generated_tokens, a.usage.completion_tokens as u64);
}
