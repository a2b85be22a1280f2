//! Liveness, readiness, metrics and the OpenAPI document.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::OpenApi;

use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::openapi::ApiDoc;
use crate::server::state::AppState;

#[utoipa::path(get, operation_id = "healthz", path = "/healthz", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: bool,
    pub index: bool,
    pub model: Option<String>,
    pub records: u64,
}

#[utoipa::path(get, operation_id = "readyz", path = "/readyz", responses(
    (status = 200, body = Readiness, description = "Database, index and model ready"),
    (status = 503, body = Readiness, description = "Something is not ready")))]
pub async fn readyz(state: web::Data<AppState>, _caller: Caller) -> HttpResponse {
    let database = state.ws.store.ping().await.is_ok();
    let records = state.ws.index.num_docs().ok();
    let model = state.model.as_ref().map(|m| m.generator.model_name().to_owned());
    let r = Readiness {
        ready: database && records.is_some() && model.is_some(),
        database,
        index: records.is_some(),
        model,
        records: records.unwrap_or(0),
    };
    if r.ready {
        HttpResponse::Ok().json(r)
    } else {
        HttpResponse::ServiceUnavailable().json(r)
    }
}

#[utoipa::path(get, operation_id = "getMetrics", path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(state: web::Data<AppState>, _caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(state.queue.depth()))
}

#[utoipa::path(get, operation_id = "getOpenApi", path = "/openapi.json", responses((status = 200, description = "This document")))]
pub async fn openapi(_caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ApiDoc::openapi()))
}
