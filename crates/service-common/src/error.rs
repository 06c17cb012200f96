//! One table of API error codes, mapped to HTTP status in one place.
//! Errors render as `{"status":"error","error":{"code","message"}}`
//! (DESIGN.md, "Public HTTP surface"); a 500 shows no internals, and the log
//! keeps the whole cause chain.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Every machine-readable error code the services return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidQuery,
    InvalidCursor,
    InvalidJobId,
    InvalidIdempotencyKey,
    MissingField,
    UnknownField,
    InvalidFieldType,
    FieldTooLong,
    InvalidCharacters,
    InvalidFileSize,
    FileTooLarge,
    InvalidPriority,
    TooManyTags,
    InvalidTag,
    InvalidBlobPath,
    InvalidMultipart,
    Unauthorized,
    Forbidden,
    /// A console form posted without the session's CSRF token, or with another one.
    InvalidCsrfToken,
    JobNotFound,
    /// The job has no result yet (or never will): it is not COMPLETED.
    JobNotCompleted,
    NotFound,
    IdempotencyConflict,
    Conflict,
    PayloadTooLarge,
    /// The client stopped sending its body for longer than the server waits.
    RequestTimeout,
    UnsupportedMediaType,
    RateLimited,
    ServiceUnavailable,
    /// The service is at a capacity limit it sets itself (concurrent
    /// uploads); unlike `service_unavailable`, nothing is down.
    ServerBusy,
    /// A bug or a broken invariant, never an outage (those are 503).
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidJson | InvalidQuery | InvalidCursor | InvalidJobId | InvalidIdempotencyKey | InvalidMultipart => {
                StatusCode::BAD_REQUEST
            }
            MissingField | UnknownField | InvalidFieldType | FieldTooLong | InvalidCharacters | InvalidFileSize
            | FileTooLarge | InvalidPriority | TooManyTags | InvalidTag | InvalidBlobPath => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden | InvalidCsrfToken => StatusCode::FORBIDDEN,
            JobNotFound | NotFound => StatusCode::NOT_FOUND,
            IdempotencyConflict | Conflict | JobNotCompleted => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable | ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as clients see it (its serde name).
    pub fn as_str(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            _ => format!("{self:?}"),
        }
    }
}

/// An error answer. Build it with a code and a message meant for the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// The request field at fault, for validation errors.
    pub field: Option<String>,
    /// Sent as `Retry-After` (429, 503).
    pub retry_after: Option<Duration>,
}

/// The error body, as documented in the OpenAPI schema.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Always "error".
    pub status: &'static str,
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError { code, message: message.into(), field: None, retry_after: None }
    }

    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError { field: Some(field.into()), ..ApiError::new(code, message) }
    }

    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Logs the cause and answers 500 without showing it.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }

    /// A store error by its kind: Postgres being away is the client's cue
    /// to come back later (503); anything else is a bug (500 `internal`).
    pub fn store(error: job_store::StoreError) -> Self {
        match error {
            job_store::StoreError::Unavailable(error) => ApiError::database(error),
            other => ApiError::internal(other),
        }
    }

    /// Postgres being away is the client's cue to come back later, not a bug.
    pub fn database(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            tracing::warn!(%error, "database unavailable");
            ApiError::new(ErrorCode::ServiceUnavailable, "the database is unavailable; retry later")
                .retry_after(Duration::from_secs(5))
        } else {
            ApiError::internal(format_args!("database: {error}"))
        }
    }
}

/// Errors that mean "Postgres cannot be reached right now".
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
    ) || matches!(error, sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(after) = self.retry_after {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        response.json(ErrorBody {
            status: "error",
            error: ErrorDetail { code: self.code, message: self.message.to_string(), field: self.field.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_render_in_snake_case() {
        assert_eq!(ErrorCode::IdempotencyConflict.as_str(), "idempotency_conflict");
        assert_eq!(ErrorCode::InvalidJobId.as_str(), "invalid_job_id");
    }

    #[test]
    fn retry_after_is_a_whole_number_of_seconds() {
        let err = ApiError::new(ErrorCode::RateLimited, "slow down").retry_after(Duration::from_millis(1200));
        let resp = err.error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }
}
