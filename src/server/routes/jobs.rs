//! `POST /v1/sync` starts a sync from a FHIR server as a job; `GET /v1/jobs/{id}` follows it.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::jobs::{self, Job, JobProgress};
use crate::server::state::AppState;
use crate::sync::{self, ServerAuth, SyncRequest};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SyncBody {
    /// The FHIR server's base URL: one the service was started with (`--sync-server`).
    pub server: String,
    /// One patient id...
    pub patient: Option<String>,
    /// ...or several...
    #[serde(default)]
    pub patients: Vec<String>,
    /// ...or every patient on the server.
    #[serde(default)]
    pub all: bool,
    /// Only changes since this instant (default: since each patient's last sync).
    pub since: Option<String>,
    /// A bearer token for the FHIR server.
    pub token: Option<String>,
    pub page_size: Option<usize>,
}

#[utoipa::path(post, operation_id = "startSync", path = "/v1/sync", request_body = SyncBody,
    responses((status = 202, body = Job, description = "Started; follow it at /v1/jobs/{id}"),
        (status = 400, body = crate::server::error::OperationOutcome),
        (status = 403, body = crate::server::error::OperationOutcome, description = "A key limited to some patients, or a server not named by --sync-server")))]
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<SyncBody>,
) -> Result<HttpResponse, ApiError> {
    caller.may_write()?;
    let b = body.into_inner();
    if !state.sync_servers.allows(&b.server) {
        return Err(ApiError::NotAllowed(format!(
            "{:?} is not a server this service syncs from (it was started with {})",
            b.server,
            if state.sync_servers.is_empty() {
                "no --sync-server".to_owned()
            } else {
                "other --sync-server URLs".to_owned()
            }
        )));
    }
    let mut req = SyncRequest::new(&b.server);
    req.patients = b.patients;
    req.patients.extend(b.patient);
    req.all = b.all;
    req.since = b.since;
    req.page_size = b.page_size.unwrap_or(req.page_size);
    req.auth = b.token.map_or(ServerAuth::None, ServerAuth::Bearer);
    req.timeout = Duration::from_secs(120);
    sync::validate(&req).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let store = &state.ws.store;
    let id = jobs::create(store, "sync", caller.id).await?;
    store.audit(&caller.name, "sync", None, Some(&req.server)).await?;
    let job =
        jobs::get(store, id, caller.id).await?.ok_or_else(|| ApiError::Internal("job vanished".into()))?;
    let st = state.clone();
    tokio::spawn(async move {
        let progress = JobProgress { store: st.ws.store.clone(), id };
        let result = sync::run(&st.ws, &req, &progress).await;
        if let Err(e) = jobs::finish(&st.ws.store, id, result).await {
            tracing::error!("the end of sync job {id} was not recorded: {e}");
        }
    });
    Ok(HttpResponse::Accepted().json(job))
}

#[utoipa::path(get, operation_id = "getJob", path = "/v1/jobs/{id}", params(("id" = u64, Path)),
    responses((status = 200, body = Job), (status = 404, body = crate::server::error::OperationOutcome)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("no job {id}"));
    let n: u64 = id.parse().map_err(|_| not_found())?;
    let job = jobs::get(&state.ws.store, n, caller.id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(job))
}
