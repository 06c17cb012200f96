//! Reading requests the same way in every service: bounded bodies (413),
//! query strings (400 `invalid_query`) and job ids in paths (400
//! `invalid_job_id`).

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
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
    read_body_from(req, &mut payload, limit).await
}

/// [`read_body`], leaving the payload with the caller, who can then refuse
/// without reading the rest ([`crate::unread_body::refuse_unread`]).
pub async fn read_body_from(
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
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

/// Longest `reason` a person may give for a change.
pub const MAX_REASON_CHARS: usize = 1000;

/// A change's reason, trimmed: required (422 `missing_field`), at most
/// [`MAX_REASON_CHARS`], no control characters but newlines and tabs. The
/// JSON API and the console's forms share these rules.
pub fn check_reason(raw: Option<&str>) -> Result<String, ApiError> {
    let missing = || {
        ApiError::field(
            ErrorCode::MissingField,
            "reason",
            "every change needs a reason: send {\"reason\": \"why\"} in the body",
        )
    };
    match raw.map(str::trim) {
        None | Some("") => Err(missing()),
        Some(s) if s.chars().count() > MAX_REASON_CHARS => Err(ApiError::field(
            ErrorCode::FieldTooLong,
            "reason",
            format!("reason is longer than {MAX_REASON_CHARS} characters"),
        )),
        Some(s) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(ApiError::field(ErrorCode::InvalidCharacters, "reason", "reason contains control characters"))
        }
        Some(s) => Ok(s.to_owned()),
    }
}

/// The JSON body of a change a person makes (a retry, a delete, closing a
/// ticket). Every change needs a `reason` (422 `missing_field` without
/// one), which is trimmed in the result.
pub async fn reason_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(T, String), ApiError> {
    let bytes = read_body(req, payload, limit).await?;
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}")))?
    };
    let Value::Object(map) = &value else {
        return Err(ApiError::new(ErrorCode::InvalidJson, "the body must be a JSON object"));
    };
    let reason = match map.get("reason") {
        None | Some(Value::Null) => check_reason(None)?,
        Some(Value::String(s)) => check_reason(Some(s))?,
        Some(_) => return Err(ApiError::field(ErrorCode::InvalidFieldType, "reason", "reason must be a string")),
    };
    let parsed = serde_json::from_value::<T>(value).map_err(|e| {
        let message = e.to_string();
        if message.contains("unknown field") {
            ApiError::new(ErrorCode::UnknownField, message)
        } else {
            ApiError::new(ErrorCode::InvalidFieldType, message)
        }
    })?;
    Ok((parsed, reason))
}
