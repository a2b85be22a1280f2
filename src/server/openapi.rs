//! The OpenAPI 3 document, generated from the handlers' `utoipa::path` annotations and the
//! types they take and return (tests check every path in it against the running server).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes::{answers, bundles, conversations, health, jobs, patients};

#[derive(OpenApi)]
#[openapi(
    info(title = "ehrqa", description = "Questions about a patient's FHIR record, answered with cited resources. Not for clinical use."),
    paths(
        health::healthz, health::readyz, health::metrics, health::openapi,
        bundles::post,
        patients::list, patients::get, patients::records, patients::resource,
        answers::context, answers::ask,
        conversations::create, conversations::ask,
        jobs::start, jobs::get,
    ),
    modifiers(&Bearer),
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
    }
}
