//! HTTP routes. Handlers turn requests into domain values and call
//! [`crate::ops`] or [`crate::db`]; nothing else lives here.

pub mod actions;
pub mod audit;
pub mod bulk;
pub mod health;
pub mod items;
pub mod views;

use actix_web::{HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::Value;
use service_common::{ApiError, ErrorCode};

use crate::domain::MAX_REASON_CHARS;

pub(crate) use service_common::request::query;
use service_common::request::read_body;

/// The JSON body of a change. Every change needs a `reason` (422
/// `missing_field` without one), which is trimmed in the result.
pub(crate) async fn write_body<T: DeserializeOwned>(
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
    let missing = || {
        ApiError::field(
            ErrorCode::MissingField,
            "reason",
            "every change needs a reason: send {\"reason\": \"why\"} in the body",
        )
    };
    let reason = match map.get("reason") {
        None | Some(Value::Null) => return Err(missing()),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(missing()),
        Some(Value::String(s)) if s.trim().chars().count() > MAX_REASON_CHARS => {
            return Err(ApiError::field(
                ErrorCode::FieldTooLong,
                "reason",
                format!("reason is longer than {MAX_REASON_CHARS} characters"),
            ));
        }
        Some(Value::String(s)) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            return Err(ApiError::field(ErrorCode::InvalidCharacters, "reason", "reason contains control characters"));
        }
        Some(Value::String(s)) => s.trim().to_owned(),
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
