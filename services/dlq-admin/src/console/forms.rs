//! Query strings and form bodies of the console: empty inputs mean "not
//! given", malformed ones are a 400 (`invalid_query`) page naming them.

use actix_web::web;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use service_common::{ApiError, ErrorCode};

use crate::console::error::ConsoleError;

pub fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(64 * 1024).error_handler(|e, _| {
        ConsoleError::Api(ApiError::new(ErrorCode::InvalidQuery, format!("the form is malformed: {e}"))).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        ConsoleError::Api(ApiError::new(ErrorCode::InvalidQuery, format!("the query is malformed: {e}"))).into()
    })
}

/// A form field: trimmed, `None` when empty.
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn invalid(field: &str, message: impl Into<String>) -> ConsoleError {
    ConsoleError::Api(ApiError::field(ErrorCode::InvalidQuery, field.to_owned(), message.into()))
}

/// RFC 3339, a browser's `datetime-local` (`2026-12-01T10:00`, taken as
/// UTC), or a date (its midnight UTC).
pub fn instant(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ConsoleError> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()));
    }
    Err(invalid(field, format!("{field} must be a time (2026-12-01T10:00, UTC) or a date (2026-12-01)")))
}

/// The value for a `datetime-local` input.
pub fn local_input(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_from_browsers_and_people() {
        let t = instant("since", Some("2026-12-01T10:00")).unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T10:00:00+00:00");
        assert_eq!(instant("since", Some("2026-12-01")).unwrap().unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert!(instant("since", None).unwrap().is_none());
        assert!(instant("since", Some("yesterday")).is_err());
        assert_eq!(local_input(Some(t)).as_deref(), Some("2026-12-01T10:00"));
    }
}
