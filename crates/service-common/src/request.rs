//! Reading requests the same way in every service: bounded bodies (413),
//! query strings (400 `invalid_query`) and job ids in paths (400
//! `invalid_job_id`).

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{ApiError, ErrorCode};

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("the body is larger than {limit} bytes"))
}

/// Refuses a body that announces more than `limit` bytes before reading any.
pub fn check_content_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Reads a body, stopping (413) as soon as it passes `limit`, whatever
/// Content-Length said (chunked bodies have none).
pub async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    check_content_length(req, limit)?;
    let mut body = web::BytesMut::new();
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

/// A query string into `T`; anything it cannot hold (unknown parameters
/// with `deny_unknown_fields`, wrong types) is a 400.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))
}

/// A job id from a path segment.
pub fn parse_job_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| ApiError::new(ErrorCode::InvalidJobId, format!("{raw:?} is not a job id (a UUID)")))
}
