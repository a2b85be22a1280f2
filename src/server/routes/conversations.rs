//! Conversations about one patient: `POST .../conversations` opens one (owned by the calling
//! key, about this patient only), `POST .../conversations/{cid}/ask` asks its next question,
//! read against the turns before (`crate::conversation`). Answers are as `ask`'s, streamed the
//! same way, with the conversation id, the turn and the resolved question. A conversation that
//! is not this key's, not this patient's, or no longer kept is 404, as one that never existed.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use tokio::sync::mpsc;

use super::answers::{
    count_answer, events, generator, model_and_options, question, wants_events, AskRequest,
};
use super::patient;
use crate::answer;
use crate::conversation::TurnAnswer;
use crate::server::auth::Caller;
use crate::server::error::{ApiError, OperationOutcome};
use crate::server::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationCreated {
    /// The conversation's id (128 random bits, hex).
    pub id: String,
    pub patient: String,
}

#[utoipa::path(post, operation_id = "createConversation", path = "/v1/patients/{id}/conversations", params(("id" = String, Path)),
    responses((status = 201, body = ConversationCreated), (status = 403, body = OperationOutcome),
        (status = 404, body = OperationOutcome)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let cid = state.conversations.create(caller.id, &id).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.ws.store.audit(&caller.name, "conversation", Some(&id), None).await?;
    Ok(HttpResponse::Created().json(ConversationCreated { id: cid, patient: id }))
}

#[utoipa::path(post, operation_id = "askInConversation", path = "/v1/patients/{id}/conversations/{cid}/ask",
    params(("id" = String, Path), ("cid" = String, Path)), request_body = AskRequest,
    responses(
        (status = 200, body = TurnAnswer, description = "The cited answer, its turn and resolved question; with Accept: text/event-stream, `token` events then an `answer` event"),
        (status = 400, body = OperationOutcome), (status = 404, body = OperationOutcome, description = "Unknown patient, or a conversation not this key's and patient's"),
        (status = 409, body = OperationOutcome, description = "The conversation's previous question is still being answered"),
        (status = 429, body = OperationOutcome, description = "Generation queue full; see Retry-After"),
        (status = 503, body = OperationOutcome, description = "No model is loaded and the question needs one (computed answers need none)")))]
pub async fn ask(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<AskRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (pid, cid) = path.into_inner();
    let id = patient(&state, &caller, &pid).await?;
    let conversation = state
        .conversations
        .get(&cid, &caller.id, &id)
        .ok_or_else(|| ApiError::NotFound(format!("unknown conversation {cid}")))?;
    let q = question(&body.question)?;
    let (model, opts) = model_and_options(&state, &body)?;
    // One question of a conversation at a time: its turns are in order.
    let conv = conversation.try_lock_owned().map_err(|_| {
        ApiError::Conflict("this conversation's previous question is still being answered".into())
    })?;
    state.ws.store.audit(&caller.name, "ask", Some(&id), Some(&q)).await?;
    let slot = state.queue.enter().await?;
    let st = state.clone();
    let (conv, plan) = web::block(move || {
        let plan = conv.prepare(&st.ws.index, st.tokenizer.as_ref(), &q, opts);
        (conv, plan)
    })
    .await?;
    let mut plan = plan?;
    let generator = generator(model, &plan.prep)?;
    answer::attach_images(&mut plan.prep, &state.ws.store).await?;
    let (tx, rx) = mpsc::channel::<String>(64);
    let st = state.clone();
    let task = tokio::spawn(async move {
        let _slot = slot;
        let mut conv = conv;
        let t = conv.answer(plan, generator.as_ref(), tx).await;
        if let Ok(t) = &t {
            count_answer(&st, &t.answer);
        }
        t
    });
    if !wants_events(&req) {
        let drain = crate::llm::generator::drain(rx);
        let t = task.await.map_err(|e| ApiError::Internal(e.to_string()))??;
        let _ = drain.await;
        return Ok(HttpResponse::Ok().json(t));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(events(rx, task)))
}
