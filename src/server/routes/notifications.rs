//! Subscription notifications from the FHIR servers the service subscribes to (`serve
//! --subscribe-to`): `POST /v1/notifications` (a backport notification Bundle, a resource, or an
//! empty ping) and `PUT /v1/notifications/{type}/{rid}` (how R4 servers such as HAPI deliver a
//! resource payload). No API key: the secret header the service put in each Subscription is the
//! credential, and it also says which server sent it. `GET /v1/subscriptions` shows how each
//! server's subscriptions are doing.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value as Json;

use crate::server::auth::Caller;
use crate::server::error::{ApiError, OperationOutcome};
use crate::server::state::AppState;
use crate::server::subscriptions::{ServerView, Subscriptions};
use crate::sync::notification;
use crate::sync::subscription::SECRET_HEADER;

#[utoipa::path(post, operation_id = "receiveNotification", path = "/v1/notifications",
    request_body(content = Object, content_type = "application/fhir+json", description = "A notification Bundle, a resource, or nothing"),
    security(("notificationSecret" = [])),
    responses((status = 200, body = OperationOutcome, description = "Accepted; the patients it names are synced from the server"),
        (status = 400, body = OperationOutcome, description = "Not JSON"),
        (status = 401, body = OperationOutcome, description = "No valid notification secret"),
        (status = 404, body = OperationOutcome, description = "The service subscribes to no server")))]
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    receive(&state, &req, &body)
}

#[utoipa::path(put, operation_id = "receiveResourceNotification", path = "/v1/notifications/{type}/{rid}",
    params(("type" = String, Path), ("rid" = String, Path)),
    request_body(content = Object, content_type = "application/fhir+json", description = "The resource that changed"),
    security(("notificationSecret" = [])),
    responses((status = 200, body = OperationOutcome, description = "Accepted; its patient is synced from the server"),
        (status = 400, body = OperationOutcome, description = "Not JSON"),
        (status = 401, body = OperationOutcome, description = "No valid notification secret"),
        (status = 404, body = OperationOutcome, description = "The service subscribes to no server")))]
pub async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    receive(&state, &req, &body)
}

/// The secret first, then the body: an unauthenticated sender learns nothing of how its body
/// would have been read.
fn receive(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let subs = subscriptions(state)?;
    let secret = req.headers().get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let server = subs.sender(secret).ok_or(ApiError::NotificationSecret)?;
    let json: Json = if body.iter().all(u8::is_ascii_whitespace) {
        Json::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("the notification is not JSON: {e}")))?
    };
    let named = notification::named(&json);
    let said = format!("received; {} reference(s) to sync", named.len());
    subs.notified(server, named);
    Ok(HttpResponse::Ok().content_type("application/fhir+json").json(OperationOutcome::information(said)))
}

#[utoipa::path(get, operation_id = "listSubscriptions", path = "/v1/subscriptions",
    responses((status = 200, body = [ServerView], description = "Each server's subscriptions and what they caused"),
        (status = 404, body = OperationOutcome, description = "The service subscribes to no server")))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.may_write()?;
    Ok(HttpResponse::Ok().json(subscriptions(&state)?.view()))
}

fn subscriptions(state: &AppState) -> Result<&Subscriptions, ApiError> {
    state.subscriptions.as_deref().ok_or_else(|| {
        ApiError::NotFound("this service subscribes to no FHIR server (serve --subscribe-to)".into())
    })
}
