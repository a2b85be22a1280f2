//! Patients: the list, one patient's summary, search over their records, and any stored
//! resource of theirs as raw FHIR (so a client can open a citation).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{page_limit, patient};
use crate::fhir::date::FhirDate;
use crate::fhir::resource_type::is_known;
use crate::fhir::ResourceRef;
use crate::retrieval::{Hit, SearchRequest};
use crate::server::auth::{Caller, Scope};
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::store::{PatientRow, PatientSummary};

#[utoipa::path(get, operation_id = "listPatients", path = "/v1/patients", responses((status = 200, body = Vec<PatientRow>)))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let mut rows = state.ws.store.patients().await?;
    if let Scope::Patients(ids) = &caller.scope {
        rows.retain(|p| ids.contains(&p.id));
    }
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, operation_id = "getPatient", path = "/v1/patients/{id}", params(("id" = String, Path)),
    responses((status = 200, body = PatientSummary), (status = 404, body = crate::server::error::OperationOutcome)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let summary = state
        .ws
        .store
        .patient_summary(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown patient {id}")))?;
    Ok(HttpResponse::Ok().json(summary))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// Words to search for (empty: newest first).
    #[serde(default)]
    pub q: String,
    /// A FHIR resource type.
    #[serde(rename = "type")]
    pub rtype: Option<String>,
    /// FHIR dates (`2019`, `2019-03`, `2019-03-02`), inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    /// 1 to 200 (default 20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordsPage {
    pub results: Vec<Hit>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Deepest page offset served (search ranks from the top for every page).
const MAX_OFFSET: usize = 10_000;

#[utoipa::path(get, operation_id = "searchRecords", path = "/v1/patients/{id}/records", params(("id" = String, Path), RecordsQuery),
    responses((status = 200, body = RecordsPage), (status = 400, body = crate::server::error::OperationOutcome)))]
pub async fn records(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<RecordsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = patient(&state, &caller, &id).await?;
    let q = query.into_inner();
    let limit = page_limit(q.limit, 20, 200)?;
    let offset: usize = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse()
            .ok()
            .filter(|o| *o <= MAX_OFFSET)
            .ok_or_else(|| ApiError::BadRequest(format!("invalid cursor {c:?}")))?,
    };
    if let Some(t) = q.rtype.as_deref().filter(|t| !is_known(t)) {
        return Err(ApiError::BadRequest(format!("unknown resource type {t:?}")));
    }
    let bound = |s: Option<&str>, end: bool| -> Result<Option<i64>, ApiError> {
        s.map(|s| {
            FhirDate::parse(s)
                .map(|d| if end { d.end_timestamp() } else { d.timestamp() })
                .ok_or_else(|| ApiError::BadRequest(format!("invalid date {s:?}")))
        })
        .transpose()
    };
    let req = SearchRequest {
        patient: id,
        query: q.q,
        rtype: q.rtype,
        from: bound(q.from.as_deref(), false)?,
        to: bound(q.to.as_deref(), true)?,
        limit: offset + limit + 1,
    };
    let st = state.clone();
    let mut hits = web::block(move || st.ws.index.search(&req)).await??;
    let more = hits.len() > offset + limit;
    hits.truncate(offset + limit);
    let results: Vec<Hit> = hits.into_iter().skip(offset).collect();
    let next_cursor = more.then(|| (offset + limit).to_string());
    Ok(HttpResponse::Ok().json(RecordsPage { results, next_cursor }))
}

#[utoipa::path(get, operation_id = "getResource", path = "/v1/patients/{id}/resources/{type}/{rid}",
    params(("id" = String, Path), ("type" = String, Path), ("rid" = String, Path)),
    responses((status = 200, description = "The FHIR resource as stored", content_type = "application/fhir+json"),
        (status = 404, body = crate::server::error::OperationOutcome)))]
pub async fn resource(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, r) = patient_and_ref(&state, &caller, path.into_inner()).await?;
    let not_found = || ApiError::NotFound(format!("{r} is not in patient {id}'s record"));
    let (owner, raw) = state.ws.store.resource_of(r.rtype(), r.id()).await?.ok_or_else(not_found)?;
    // Another patient's resource is "not found" here, not "forbidden": its existence is not told.
    if owner.as_deref() != Some(id.as_str()) {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok().content_type("application/fhir+json").body(raw))
}

/// A record as the page shows it: the rendering, its date, and the note or transcript decoded
/// from its attachments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    #[serde(rename = "ref")]
    pub rref: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub date: Option<String>,
    pub status: Option<String>,
    /// The one-line rendering.
    pub text: String,
    /// Decoded note text, or an image's transcript, with where it came from.
    pub note: Option<String>,
    /// The encounter the record belongs to.
    pub encounter: Option<String>,
}

#[utoipa::path(get, operation_id = "getRecord", path = "/v1/patients/{id}/resources/{type}/{rid}/record",
    params(("id" = String, Path), ("type" = String, Path), ("rid" = String, Path)),
    responses((status = 200, body = RecordView), (status = 404, body = crate::server::error::OperationOutcome)))]
pub async fn record(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, r) = patient_and_ref(&state, &caller, path.into_inner()).await?;
    let rec = state
        .ws
        .store
        .record_of(&id, &r)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{r} is not in patient {id}'s record")))?;
    Ok(HttpResponse::Ok().json(RecordView {
        rref: r.to_string(),
        rtype: r.rtype().to_owned(),
        date: rec.date.map(|d| d.to_string()),
        status: rec.status,
        text: rec.text,
        note: rec.note,
        encounter: rec.encounter.map(|e| e.to_string()),
    }))
}

/// The patient of a `/patients/{id}/resources/{type}/{rid}` path, checked, and the reference it
/// names, well formed (whether the resource is that patient's is for the handler to check).
async fn patient_and_ref(
    state: &AppState,
    caller: &Caller,
    (id, rtype, rid): (String, String, String),
) -> Result<(String, ResourceRef), ApiError> {
    let id = patient(state, caller, &id).await?;
    let r = ResourceRef::new(&rtype, &rid)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid reference {rtype}/{rid}")))?;
    Ok((id, r))
}
