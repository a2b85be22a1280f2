//! The HTTP edge's one error type. Every layer's error is mapped here, once, to a status and a
//! FHIR `OperationOutcome`; internal details are logged with the request id, never sent.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::answer::AnswerError;
use crate::fhir::InputError;
use crate::ingest::IngestError;
use crate::llm::LlmError;
use crate::retrieval::IndexError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("a valid notification secret is required")]
    NotificationSecret,
    #[error("this API key may not read patient {0}")]
    Forbidden(String),
    /// Something no key may ask of this service as it was started (a server it was not given).
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFhir(String),
    /// FHIR, but storing it would break a rule (two people merged); nothing was stored.
    #[error("{0}")]
    Refused(String),
    #[error("too many questions in flight; retry in {retry_after} s")]
    Busy { retry_after: u64 },
    /// The resource is busy with another request that must finish first (a conversation's
    /// previous question).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotReady(String),
    /// The data directory or database is busy with another writer; the request may be retried.
    #[error("{reason}; retry in {retry_after} s")]
    Unavailable { reason: String, retry_after: u64 },
    #[error("the model server failed: {0}")]
    Upstream(String),
    #[error("internal error")]
    Internal(String),
}

/// FHIR R4 `OperationOutcome` with one issue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperationOutcome {
    #[serde(rename = "resourceType")]
    pub resource_type: &'static str,
    pub issue: Vec<Issue>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Issue {
    pub severity: &'static str,
    /// FHIR issue type: invalid, security, forbidden, not-found, too-long, processing, throttled,
    /// transient, exception.
    pub code: &'static str,
    pub diagnostics: String,
}

impl OperationOutcome {
    /// A success that says what was done.
    pub fn information(diagnostics: String) -> Self {
        Self {
            resource_type: "OperationOutcome",
            issue: vec![Issue { severity: "information", code: "informational", diagnostics }],
        }
    }

    pub fn error(code: &'static str, diagnostics: String) -> Self {
        Self {
            resource_type: "OperationOutcome",
            issue: vec![Issue { severity: "error", code, diagnostics }],
        }
    }
}

impl ApiError {
    fn issue_code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid",
            ApiError::Unauthorized | ApiError::NotificationSecret => "login",
            ApiError::Forbidden(_) | ApiError::NotAllowed(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::TooLarge(_) => "too-long",
            ApiError::NotFhir(_) => "structure",
            ApiError::Refused(_) => "business-rule",
            ApiError::Busy { .. } => "throttled",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotReady(_) | ApiError::Upstream(_) | ApiError::Unavailable { .. } => "transient",
            ApiError::Internal(_) => "exception",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::NotificationSecret => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::NotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFhir(_) | ApiError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotReady(_) | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!("internal error: {}", crate::fhir::redact::redact(detail));
        }
        let mut resp = HttpResponse::build(self.status_code());
        resp.content_type("application/fhir+json");
        match self {
            ApiError::Busy { retry_after } | ApiError::Unavailable { retry_after, .. } => {
                resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unauthorized => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        resp.json(OperationOutcome::error(self.issue_code(), self.to_string()))
    }
}

/// Seconds a client is asked to wait when another writer holds the data directory.
const WRITER_RETRY_AFTER: u64 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_busy() {
            return ApiError::Unavailable {
                reason: "the database is busy".into(),
                retry_after: WRITER_RETRY_AFTER,
            };
        }
        ApiError::Internal(e.to_string())
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Busy { .. } => ApiError::Unavailable {
                reason: "another process is writing to this service's data directory".into(),
                retry_after: WRITER_RETRY_AFTER,
            },
            IngestError::Store(e) => e.into(),
            IngestError::Refused(reason) => ApiError::Refused(reason),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
            InputError::Io { .. } => ApiError::Internal(e.to_string()),
            _ => ApiError::NotFhir(e.to_string()),
        }
    }
}

impl From<AnswerError> for ApiError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Retrieval(e) => e.into(),
            AnswerError::Store(e) => e.into(),
            AnswerError::Model(LlmError::Remote(m)) => ApiError::Upstream(m),
            AnswerError::Model(e @ LlmError::NotLoaded) => ApiError::NotReady(e.to_string()),
            AnswerError::Model(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
