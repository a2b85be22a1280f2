//! The clinician's page: three files compiled into the binary (no CDN, no fonts, nothing fetched
//! at run time), served without a key because they hold no data. Everything the page shows it
//! reads from `/v1` with the key the user enters, exactly as any other client would.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::server::error::ApiError;

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/app.js");
const STYLE: &str = include_str!("../page/app.css");

/// Scripts, styles and connections from this origin only; inline code never runs, so record
/// text that slipped into the page as markup still could not execute.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self' data: blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub async fn index() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match name.as_str() {
        "app.js" => Ok(file("text/javascript; charset=utf-8", SCRIPT)),
        "app.css" => Ok(file("text/css; charset=utf-8", STYLE)),
        other => Err(ApiError::NotFound(format!("no page file {other:?}"))),
    }
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
