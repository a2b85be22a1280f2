//! A patient's chart (summary, age, vitals and key labs as trend series) and their timeline,
//! paged newest first: what a clinician's page shows before anyone asks a question.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{page_limit, patient};
use crate::chart::{self, Chart};
use crate::server::auth::Caller;
use crate::server::error::{ApiError, OperationOutcome};
use crate::server::state::AppState;
use crate::store::{TimelineCursor, TimelinePage, TIMELINE_TYPES};

#[utoipa::path(get, operation_id = "getChart", path = "/v1/patients/{id}/chart", params(("id" = String, Path)),
    responses((status = 200, body = Chart), (status = 404, body = OperationOutcome)))]
pub async fn chart(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let store = &state.ws.store;
    // Two reads on two pooled connections at once: the summary's queries and the observations.
    let (summary, observations) = tokio::join!(store.patient_summary(&id), store.observations(&id));
    let summary = summary?.ok_or_else(|| ApiError::NotFound(format!("unknown patient {id}")))?;
    let observations = observations?;
    let today = crate::clock::now();
    let chart = web::block(move || chart::chart(summary, &observations, today)).await?;
    Ok(HttpResponse::Ok().json(chart))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Resource types, comma-separated, among Encounter, Observation, DiagnosticReport,
    /// Procedure, Immunization, DocumentReference, Condition, MedicationRequest and
    /// AllergyIntolerance (default: all of them).
    pub types: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "getTimeline", path = "/v1/patients/{id}/timeline",
    params(("id" = String, Path), TimelineQuery),
    responses((status = 200, body = TimelinePage), (status = 400, body = OperationOutcome),
        (status = 404, body = OperationOutcome)))]
pub async fn timeline(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<TimelineQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let q = query.into_inner();
    let limit = page_limit(q.limit, 100, 500)?;
    let types: Vec<String> = match q.types.as_deref() {
        None => TIMELINE_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        Some(list) => list.split(',').map(|t| timeline_type(t.trim())).collect::<Result<_, _>>()?,
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            TimelineCursor::parse(c).ok_or_else(|| ApiError::BadRequest(format!("invalid cursor {c:?}")))
        })
        .transpose()?;
    let page = state.ws.store.timeline(&id, &types, cursor.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

fn timeline_type(t: &str) -> Result<String, ApiError> {
    TIMELINE_TYPES
        .iter()
        .find(|k| **k == t)
        .map(|k| (*k).to_owned())
        .ok_or_else(|| ApiError::BadRequest(format!("{t:?} is not a timeline type")))
}
