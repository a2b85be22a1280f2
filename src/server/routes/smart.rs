//! The SMART App Launch: `GET /smart/launch?iss=...&launch=...` (EHR launch, or standalone
//! without `launch`) sends the browser to the issuer's authorization server; `GET
//! /smart/callback?code=...&state=...` takes it back, exchanges the code, syncs the patient the
//! token is for from the issuer with that token, opens a session for that patient and lands on
//! their chart. Only issuers named by `--smart-client` may launch; anything else is answered
//! here, in plain text, without a redirect.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::fhir::redact::redact;
use crate::server::state::AppState;
use crate::sync::smart::launch::LaunchError;
use crate::sync::smart::oauth::oauth_code;
use crate::sync::{self, ServerAuth, Status, SyncRequest};

#[derive(Debug, Deserialize)]
pub struct LaunchQuery {
    iss: Option<String>,
    launch: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn text(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!("{message}\n"))
}

pub async fn launch(state: web::Data<AppState>, q: web::Query<LaunchQuery>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(iss) = q.iss.as_deref() else {
        return text(StatusCode::BAD_REQUEST, "a SMART launch needs iss (the FHIR server's base URL)");
    };
    let Some(client) = state.smart_clients.for_issuer(iss) else {
        return text(
            StatusCode::FORBIDDEN,
            "this service is not registered with that FHIR server (--smart-client)",
        );
    };
    if q.launch.as_deref().is_some_and(|l| l.is_empty() || l.len() > 1024) {
        return text(StatusCode::BAD_REQUEST, "launch must be 1 to 1024 characters");
    }
    match state.launches.begin(client, q.launch.as_deref()).await {
        Ok(url) => HttpResponse::Found().insert_header((header::LOCATION, url)).finish(),
        Err(e) => {
            tracing::warn!("SMART launch failed: {}", redact(&e.to_string()));
            text(StatusCode::BAD_GATEWAY, &e.to_string())
        }
    }
}

pub async fn callback(state: web::Data<AppState>, q: web::Query<CallbackQuery>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(pending) = q.state.as_deref().map(|s| state.launches.take(s)) else {
        return text(StatusCode::BAD_REQUEST, "no state: not a SMART callback");
    };
    let pending = match pending {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(error) = &q.error {
        let code = oauth_code(Some(error)).unwrap_or("an error");
        return text(StatusCode::FORBIDDEN, &LaunchError::Refused(code.to_owned()).to_string());
    }
    let Some(code) = q.code.as_deref() else {
        return text(StatusCode::BAD_REQUEST, "no code in the callback");
    };
    let launched = match state.launches.finish(pending, code).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("SMART launch failed: {}", redact(&e.to_string()));
            return text(StatusCode::BAD_GATEWAY, &e.to_string());
        }
    };
    let mut req = SyncRequest::new(&launched.client.issuer);
    req.patients = vec![launched.patient.clone()];
    req.auth = ServerAuth::Bearer(launched.access_token.clone());
    let synced = sync::run(&state.ws, &req, &sync::Quiet).await;
    let failed = match &synced {
        Ok(r) => r.patients.iter().find(|p| p.status == Status::Failed).and_then(|p| p.error.clone()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(e) = failed {
        tracing::warn!("SMART launch sync failed: {}", redact(&e));
        return text(StatusCode::BAD_GATEWAY, &format!("syncing the launched patient failed: {e}"));
    }
    let who = format!("smart:{}", launched.client.client_id);
    let detail =
        format!("{} (encounter {})", launched.client.issuer, launched.encounter.as_deref().unwrap_or("none"));
    if let Err(e) = state.ws.store.audit(&who, "smart-launch", Some(&launched.patient), Some(&detail)).await {
        return text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let Ok(cookie) = state.sessions.open(&who, &launched.patient, launched.expires_in) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "no randomness for a session");
    };
    let chart = format!("/#/patients/{}", launched.patient);
    HttpResponse::Found().cookie(cookie).insert_header((header::LOCATION, chart)).finish()
}
