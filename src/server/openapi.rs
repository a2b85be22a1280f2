//! The OpenAPI 3 document, generated from the handlers' `utoipa::path` annotations and the
//! types they take and return (tests check every path in it against the running server, validate
//! it with a standard validator and generate a client from it).
//!
//! The answers every route shares (a missing key, a key scoped to other patients, a body over
//! the limit, a busy database) are added here by rule rather than repeated in each annotation, so
//! a new route cannot forget them.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::routes::{answers, bundles, chart, conversations, drafts, health, jobs, notifications, patients};

#[derive(OpenApi)]
#[openapi(
    info(title = "ehrqa", description = "Questions about a patient's FHIR record, answered with cited resources. Not for clinical use."),
    paths(
        health::healthz, health::readyz, health::metrics, health::openapi,
        bundles::post,
        patients::list, patients::get, patients::records, patients::resource, patients::record,
        chart::chart, chart::timeline,
        answers::context, answers::ask,
        conversations::create, conversations::ask,
        drafts::draft, drafts::export,
        jobs::start, jobs::get,
        notifications::post, notifications::put, notifications::list,
    ),
    modifiers(&Bearer, &SharedAnswers),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // What a FHIR server's notifications carry instead of a key (`serve --subscribe-to`).
        components.add_security_scheme(
            "notificationSecret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                crate::sync::subscription::SECRET_HEADER,
            ))),
        );
    }
}

/// Routes anyone may call without a key.
const PUBLIC: &[&str] = &["/healthz"];

/// Routes where a key scoped to some patients can be refused (`Caller::may_read`, `may_write`).
fn may_forbid(path: &str) -> bool {
    path.starts_with("/v1/patients/{id}") || ["/v1/bundles", "/v1/sync", "/v1/subscriptions"].contains(&path)
}

/// The shared error answers, as named responses every operation refers to.
const SHARED: &[(&str, &str, &str)] = &[
    ("401", "Unauthorized", "No valid API key (Authorization: Bearer <key>)"),
    ("403", "Forbidden", "The API key may not read this patient, or may not write"),
    ("413", "PayloadTooLarge", "The request body is over the service's limit"),
    ("503", "Unavailable", "The database is busy with another writer; retry after Retry-After seconds"),
];

struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (_, name, description) in SHARED {
            let outcome = Content::new(Some(Ref::from_schema_name("OperationOutcome")));
            let response =
                ResponseBuilder::new().description(*description).content("application/fhir+json", outcome);
            components.responses.insert((*name).to_owned(), RefOr::T(response.build()));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                if PUBLIC.contains(&path.as_str()) {
                    op.security = Some(Vec::new());
                    continue;
                }
                share(op, "401");
                if may_forbid(path) {
                    share(op, "403");
                }
                if op.request_body.is_some() {
                    share(op, "413");
                }
                if path.starts_with("/v1/") {
                    share(op, "503");
                }
            }
        }
    }
}

/// Adds the shared answer for `status` unless the operation describes its own.
fn share(op: &mut Operation, status: &str) {
    let Some((_, name, _)) = SHARED.iter().find(|(s, _, _)| *s == status) else { return };
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
}
