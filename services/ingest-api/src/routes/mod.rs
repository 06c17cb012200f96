//! HTTP routes. Handlers turn requests into domain calls and domain results
//! into responses; nothing else lives here.

pub mod health;
pub mod jobs;
pub mod status;
pub mod submit;
pub mod upload;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use bytes::BytesMut;
use futures::StreamExt;
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

/// Refuses a body that announces more than `limit` bytes before reading any.
pub(crate) fn check_content_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("the body is larger than {limit} bytes"))
}

/// Reads a body, stopping (413) as soon as it passes `limit`, whatever
/// Content-Length said (chunked bodies have none).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    check_content_length(req, limit)?;
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

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
