//! Visit-summary drafts for a documentation assistant: `POST .../encounters/{eid}/draft` asks
//! the answer pipeline for a cited summary of one visit (streamed like `ask`), and
//! `POST .../drafts/export` turns the clinician's edited text into a FHIR `DocumentReference`
//! (preliminary) handed back to the caller. Nothing is stored or sent anywhere.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::answers::{model_and_options, respond, AskRequest};
use super::patient;
use crate::draft::{self, Draft, MAX_RELATED, MAX_TEXT};
use crate::fhir::{Record, ResourceRef};
use crate::server::auth::Caller;
use crate::server::error::{ApiError, OperationOutcome};
use crate::server::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DraftRequest {
    /// Tokens of evidence (256 to 131072; default: the server's).
    pub budget: Option<usize>,
    /// Longest draft in tokens (default: the server's; at most 8192).
    pub max_tokens: Option<usize>,
}

#[utoipa::path(post, operation_id = "draftVisitSummary", path = "/v1/patients/{id}/encounters/{eid}/draft",
    params(("id" = String, Path), ("eid" = String, Path, description = "The encounter's id")),
    request_body = DraftRequest,
    responses(
        (status = 200, body = crate::answer::Answer, description = "A cited summary of the visit, checked like any answer; with Accept: text/event-stream, `token` events then an `answer` event"),
        (status = 400, body = OperationOutcome), (status = 404, body = OperationOutcome, description = "Unknown patient, or not one of their encounters"),
        (status = 429, body = OperationOutcome, description = "Generation queue full; see Retry-After")))]
pub async fn draft(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<DraftRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (pid, eid) = path.into_inner();
    let id = patient(&state, &caller, &pid).await?;
    let (enc, visit) = encounter_of(&state, &id, &eid).await?;
    let date =
        visit.date.ok_or_else(|| ApiError::BadRequest(format!("{enc} has no date to name the visit by")))?;
    let q = draft::question(&enc, &date);
    let ask = AskRequest {
        question: q.clone(),
        budget: body.budget,
        max_tokens: body.max_tokens,
        model_only: true,
    };
    let (model, opts) = model_and_options(&state, &ask)?;
    state.ws.store.audit(&caller.name, "draft", Some(&id), Some(&q)).await?;
    respond(state, id, q, model, opts, &req).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExportRequest {
    /// The encounter the summary is about, `Encounter/<id>`.
    pub encounter: String,
    /// The draft as the clinician left it (1 to 20,000 characters).
    pub text: String,
    /// The records the draft cites, `Type/id` (at most 200), all of this patient's.
    #[serde(default)]
    pub related: Vec<String>,
}

#[utoipa::path(post, operation_id = "exportDraft", path = "/v1/patients/{id}/drafts/export",
    params(("id" = String, Path)), request_body = ExportRequest,
    responses(
        (status = 200, description = "A FHIR R4 DocumentReference (status current, docStatus preliminary), not stored", content_type = "application/fhir+json"),
        (status = 400, body = OperationOutcome), (status = 404, body = OperationOutcome)))]
pub async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ExportRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let eid = body.encounter.strip_prefix("Encounter/").ok_or_else(|| {
        ApiError::BadRequest(format!("encounter must be Encounter/<id>, got {:?}", body.encounter))
    })?;
    let (enc, _) = encounter_of(&state, &id, eid).await?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(ApiError::BadRequest(format!("text must be 1 to {MAX_TEXT} characters")));
    }
    if body.related.len() > MAX_RELATED {
        return Err(ApiError::BadRequest(format!("at most {MAX_RELATED} related records")));
    }
    let mut related = Vec::with_capacity(body.related.len());
    for r in &body.related {
        let rr =
            ResourceRef::parse(r).ok_or_else(|| ApiError::BadRequest(format!("invalid reference {r:?}")))?;
        if !state.ws.store.holds(&id, &rr).await? {
            return Err(ApiError::BadRequest(format!("{rr} is not in patient {id}'s record")));
        }
        related.push(rr);
    }
    let d = Draft { patient: &id, encounter: &enc, text, related: &related, now: crate::clock::now() };
    let doc = draft::document_reference(&d).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.ws.store.audit(&caller.name, "export", Some(&id), None).await?;
    Ok(HttpResponse::Ok().content_type("application/fhir+json").json(doc))
}

/// One of the patient's encounters and its record, else 404 (another patient's encounter is not
/// told apart).
async fn encounter_of(state: &AppState, patient: &str, eid: &str) -> Result<(ResourceRef, Record), ApiError> {
    let enc = ResourceRef::new("Encounter", eid)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid encounter id {eid:?}")))?;
    match state.ws.store.record_of(patient, &enc).await? {
        Some(visit) => Ok((enc, visit)),
        None => Err(ApiError::NotFound(format!("{enc} is not one of patient {patient}'s encounters"))),
    }
}
