//! The REST service (actix-web): routes under `/v1`, bearer API keys, FHIR `OperationOutcome`
//! errors, a bounded generation queue, Prometheus metrics, an OpenAPI document, and a tracing
//! span with a request id around every request (no patient data in it at info level).

pub mod auth;
pub mod background;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod preparation;
pub mod queue;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod subscriptions;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpServer};
use tracing::Instrument;

use error::ApiError;
use metrics::MethodLabel;
use state::AppState;

/// Starts serving on `bind` and runs until the process is stopped.
pub async fn serve(state: AppState, bind: SocketAddr, workers: usize) -> std::io::Result<()> {
    let state = web::Data::new(state);
    background::start(state.clone());
    let subscriptions = state.subscriptions.clone();
    let ws = state.ws.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(256 * 1024).error_handler(|e, _| json_error(e).into()))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(format!("invalid query: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(format!("invalid path: {e}")).into()),
            )
            .wrap_fn(observe)
            .configure(routes::configure)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such endpoint".into()))
            }))
    })
    .workers(workers.max(1))
    .bind(bind)?;
    if let Some(subs) = subscriptions {
        // Made once the socket listens, since a server may call back at once.
        subs.start(ws).await.map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    tracing::info!(%bind, "serving");
    server.run().await
}

/// A JSON body over the limit is 413, as the OpenAPI document says; any other fault is 400.
fn json_error(e: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError;
    match e {
        JsonPayloadError::Overflow { limit, .. } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::TooLarge(format!("the JSON body is over the limit of {limit} bytes"))
        }
        e => ApiError::BadRequest(format!("invalid JSON body: {e}")),
    }
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// Around every request: a request id (echoed as `x-request-id`), a tracing span with the route
/// template (not the path, which names patients), and metrics, whose labels are bounded: the
/// method as one of a closed set and the route as a matched template, whatever the client sent.
fn observe<S>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let pattern = req.match_pattern();
    let route = pattern.as_deref().unwrap_or(metrics::UNMATCHED).to_owned();
    let method = MethodLabel::of(req.method().as_str());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", id, method = method.as_str(), %route);
    let started = Instant::now();
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        let status = res.status().as_u16();
        if let Some(s) = state {
            s.metrics.observe(method, pattern.as_deref(), status, started.elapsed().as_secs_f64());
        }
        if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
        }
        tracing::info!(status, ms = started.elapsed().as_millis() as u64, "request");
        Ok(res)
    }
    .instrument(span)
}
