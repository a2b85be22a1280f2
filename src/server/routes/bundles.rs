//! `POST /v1/bundles`: one FHIR input (a Bundle, a resource, an array, or NDJSON), ingested
//! all-or-nothing.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::fhir::input::Format;
use crate::fhir::Threads;
use crate::ingest::{ingest_loaded, load_bytes, IngestReport};
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::metrics::Metrics;
use crate::server::state::AppState;

#[utoipa::path(post, operation_id = "ingestBundle", path = "/v1/bundles",
    request_body(description = "A FHIR Bundle, a resource or an array of them (application/fhir+json or application/json), or NDJSON (application/fhir+ndjson)",
        content((Object = "application/fhir+json"), (Object = "application/json"), (String = "application/fhir+ndjson"))),
    responses(
        (status = 200, body = IngestReport, description = "Ingested; counts per resource type in by_type"),
        (status = 413, body = crate::server::error::OperationOutcome, description = "Body over the limit"),
        (status = 422, body = crate::server::error::OperationOutcome, description = "Not FHIR; nothing stored"),
        (status = 503, body = crate::server::error::OperationOutcome, description = "Busy; retry after Retry-After seconds")))]
pub async fn post(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.may_write()?;
    let body = read_limited(&req, payload, state.limits.max_body).await?;
    // Held until the input is stored: preparing it, and the prepared batch, cost memory in
    // proportion to its size, so large inputs take turns instead of adding up.
    let _preparing = state.preparing.enter(body.len()).await?;
    let format = format_of(&req);
    let st = state.clone();
    let loaded = web::block(move || {
        load_bytes("request body".into(), &body, format, st.ws.counter.as_deref(), Threads::TwoIfLarge)
    })
    .await?;
    let loaded = loaded.accepted()?;
    let report = ingest_loaded(&state.ws, loaded).await?;
    Metrics::add(&state.metrics.ingest_requests, 1);
    Metrics::add(&state.metrics.ingested_resources, report.resources as u64);
    let detail = format!("{} resources", report.resources);
    state.ws.store.audit(&caller.name, "ingest", None, Some(&detail)).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// The body, refused as soon as it passes `limit` bytes (or says it will).
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = |n: usize| {
        ApiError::TooLarge(format!("body of {n} bytes or more is over the limit of {limit} bytes"))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(too_large(n));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn format_of(req: &HttpRequest) -> Format {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.contains("ndjson") {
        Format::Ndjson
    } else if ct.contains("json") {
        Format::Json
    } else {
        Format::Auto
    }
}
