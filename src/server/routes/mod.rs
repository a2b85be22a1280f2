//! The routes, one file per resource. Handlers are thin: check the caller, call the library
//! (blocking work through `web::block`), map errors once through `ApiError`.

pub mod answers;
pub mod bundles;
pub mod chart;
pub mod conversations;
pub mod drafts;
pub mod health;
pub mod jobs;
pub mod notifications;
pub mod page;
pub mod patients;
pub mod smart;

use actix_web::web;

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::fhir::reference::is_valid_id;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page::index))
        .route("/page/{file}", web::get().to(page::asset))
        .route("/smart/launch", web::get().to(smart::launch))
        .route("/smart/callback", web::get().to(smart::callback))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/openapi.json", web::get().to(health::openapi))
        .service(
            web::scope("/v1")
                .route("/bundles", web::post().to(bundles::post))
                .route("/patients", web::get().to(patients::list))
                .route("/patients/{id}", web::get().to(patients::get))
                .route("/patients/{id}/records", web::get().to(patients::records))
                .route("/patients/{id}/chart", web::get().to(chart::chart))
                .route("/patients/{id}/timeline", web::get().to(chart::timeline))
                .route("/patients/{id}/resources/{type}/{rid}", web::get().to(patients::resource))
                .route("/patients/{id}/resources/{type}/{rid}/record", web::get().to(patients::record))
                .route("/patients/{id}/encounters/{eid}/draft", web::post().to(drafts::draft))
                .route("/patients/{id}/drafts/export", web::post().to(drafts::export))
                .route("/patients/{id}/context", web::post().to(answers::context))
                .route("/patients/{id}/ask", web::post().to(answers::ask))
                .route("/patients/{id}/conversations", web::post().to(conversations::create))
                .route("/patients/{id}/conversations/{cid}/ask", web::post().to(conversations::ask))
                .route("/sync", web::post().to(jobs::start))
                .route("/jobs/{id}", web::get().to(jobs::get))
                .route("/notifications", web::post().to(notifications::post))
                .route("/notifications/{type}/{rid}", web::put().to(notifications::put))
                .route("/subscriptions", web::get().to(notifications::list)),
        );
}

/// The patient of a path, checked: a valid id, readable by the caller, present.
pub async fn patient(state: &AppState, caller: &Caller, id: &str) -> Result<String, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::BadRequest(format!("invalid patient id {id:?}")));
    }
    caller.may_read(id)?;
    if !state.ws.store.patient_exists(id).await? {
        return Err(ApiError::NotFound(format!("unknown patient {id}")));
    }
    Ok(id.to_owned())
}

/// A page size from a query: `default` when absent, refused outside 1 to `max`.
pub fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {max}, got {limit}")));
    }
    Ok(limit)
}
