//! HTTP routes. Handlers turn requests into domain calls and domain results
//! into responses; nothing else lives here.

pub mod health;
pub mod jobs;
pub mod results;
pub mod status;
pub mod submit;
pub mod upload;

use actix_web::HttpRequest;
use actix_web::http::header;
use service_common::{ApiError, ErrorCode};

/// Refuses a request whose media type is not the expected one (415).
pub(crate) fn require_media_type(
    req: &HttpRequest,
    accept: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<(), ApiError> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match media {
        Some(m) if accept(&m) => Ok(()),
        Some(m) => Err(ApiError::new(ErrorCode::UnsupportedMediaType, format!("expected {expected}, got {m}"))),
        None => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected {expected}; no Content-Type was sent"),
        )),
    }
}

pub(crate) use service_common::request::{check_content_length, read_body_from};

/// The optional `Idempotency-Key` header: 1 to 255 printable ASCII characters.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    let invalid = || {
        ApiError::new(ErrorCode::InvalidIdempotencyKey, "Idempotency-Key must be 1 to 255 printable ASCII characters")
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

pub(crate) fn tracking_url(job_id: uuid::Uuid) -> String {
    format!("/api/job/{job_id}/status")
}
