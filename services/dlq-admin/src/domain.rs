//! Requests become these types at the edge: filters, selections, reasons,
//! cursors. Everything past the handlers holds only valid values.

use chrono::{DateTime, NaiveDate, Utc};
use job_model::{ItemKind, JobPriority};
pub use job_store::dlq::{DlqFilter, ItemCursor};
use serde::Deserialize;
use service_common::{ApiError, ErrorCode};

pub use service_common::request::MAX_REASON_CHARS;
const MAX_FILTER_CHARS: usize = 500;

/// The filter's fields as they arrive, in a query string or a JSON body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterFields {
    /// `job` or `poison`.
    pub kind: Option<String>,
    /// Case-insensitive substring of the error message.
    pub error_contains: Option<String>,
    /// The failing stage, e.g. `upload` (jobs only).
    pub stage: Option<String>,
    /// HIGH, NORMAL or LOW (jobs only).
    pub priority: Option<String>,
    pub document_id: Option<String>,
    /// Dead-lettered at or after this instant (RFC 3339, or a date: its midnight UTC).
    pub since: Option<String>,
    /// Dead-lettered before this instant (RFC 3339, or a date).
    pub until: Option<String>,
    /// An error fingerprint from `GET /api/dlq/groups` (16 hex characters).
    pub fingerprint: Option<String>,
    /// The dead-letter reason, e.g. `retries_exhausted`, `not_json`, `delivery_limit`.
    pub reason: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(ErrorCode::InvalidQuery, field.to_owned(), message.into())
}

impl FilterFields {
    /// Parses every field; a malformed one is a 400 naming it. `prefix`
    /// locates the fields in the request (`filter.` in a JSON body).
    pub fn parse(&self, prefix: &str) -> Result<DlqFilter, ApiError> {
        let name = |f: &str| format!("{prefix}{f}");
        let text = |f: &str, v: &Option<String>| -> Result<Option<String>, ApiError> {
            match v.as_deref().map(str::trim) {
                None => Ok(None),
                Some("") => Err(invalid(&name(f), format!("{} must not be empty", name(f)))),
                Some(s) if s.chars().count() > MAX_FILTER_CHARS => {
                    Err(invalid(&name(f), format!("{} is longer than {MAX_FILTER_CHARS} characters", name(f))))
                }
                Some(s) if s.chars().any(char::is_control) => {
                    Err(invalid(&name(f), format!("{} contains control characters", name(f))))
                }
                Some(s) => Ok(Some(s.to_owned())),
            }
        };
        let kind = match &self.kind {
            None => None,
            Some(raw) => Some(ItemKind::parse(raw).ok_or_else(|| invalid(&name("kind"), "kind is job or poison"))?),
        };
        let priority = match &self.priority {
            None => None,
            Some(raw) => Some(raw.parse::<JobPriority>().map_err(|e| invalid(&name("priority"), e.to_string()))?),
        };
        let since = self.since.as_deref().map(|s| parse_instant(s, &name("since"))).transpose()?;
        let until = self.until.as_deref().map(|s| parse_instant(s, &name("until"))).transpose()?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(invalid(&name("until"), "until must be later than since"));
        }
        let fingerprint = match self.fingerprint.as_deref().map(str::trim) {
            None => None,
            Some(f) if f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit()) => Some(f.to_ascii_lowercase()),
            Some(_) => {
                return Err(invalid(
                    &name("fingerprint"),
                    "a fingerprint is 16 hex characters, as GET /api/dlq/groups returns",
                ));
            }
        };
        Ok(DlqFilter {
            kind,
            error_contains: text("error_contains", &self.error_contains)?,
            stage: text("stage", &self.stage)?,
            priority,
            document_id: text("document_id", &self.document_id)?,
            since,
            until,
            fingerprint,
            reason: text("reason", &self.reason)?,
        })
    }
}

/// RFC 3339 (`2026-11-29T10:00:00Z`), or a bare date meaning its midnight UTC.
fn parse_instant(raw: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(invalid(field, format!("{field} must be an RFC 3339 time (2026-11-29T10:00:00Z) or a date (2026-11-29)")))
}

/// A job id (or poison item id) from a path.
pub use service_common::request::parse_job_id as parse_id;

/// The list's keyset cursor, from the string this API returned.
pub fn parse_cursor(raw: &str) -> Result<ItemCursor, ApiError> {
    ItemCursor::decode(raw)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned"))
}

/// Page size: 1 to `max`, `default` when absent.
pub fn parse_limit(raw: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid("limit", format!("limit must be between 1 and {max}")))
    }
}

/// A message payload as printable text: valid UTF-8 stays readable,
/// backslashes and control or bidi-override characters are escaped
/// (`\n`, `\u{1b}`), bytes that are not UTF-8 become `\xNN`. At most
/// `limit` bytes of the payload are rendered; the flag says whether more
/// were left out.
pub fn escape_payload(bytes: &[u8], limit: usize) -> (String, bool) {
    use std::fmt::Write;
    let truncated = bytes.len() > limit;
    let shown = &bytes[..bytes.len().min(limit)];
    let mut out = String::with_capacity(shown.len());
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() || is_invisible_format(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    (out, truncated)
}

/// Characters that reorder or hide text on a terminal or in a browser.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_escaped_and_truncated() {
        assert_eq!(escape_payload(b"{\"a\":1}", 100), ("{\"a\":1}".to_owned(), false));
        assert_eq!(escape_payload(b"a\nb\\c\x1b[31m", 100).0, "a\\nb\\\\c\\u{1b}[31m");
        assert_eq!(escape_payload(b"\xff\x00ok", 100).0, "\\xff\\u{0}ok");
        assert_eq!(escape_payload("Grüße \u{202e}x".as_bytes(), 100).0, "Grüße \\u{202e}x");
        assert_eq!(escape_payload(b"abcdef", 3), ("abc".to_owned(), true));
    }

    #[test]
    fn filters_parse_and_name_the_bad_field() {
        let fields = FilterFields {
            kind: Some("JOB".into()),
            priority: Some("high".into()),
            since: Some("2026-11-01".into()),
            until: Some("2026-11-02T00:00:00+01:00".into()),
            fingerprint: Some("00112233AABBCCDD".into()),
            ..Default::default()
        };
        let f = fields.parse("").unwrap();
        assert_eq!(f.kind, Some(ItemKind::Job));
        assert_eq!(f.priority, Some(JobPriority::High));
        assert_eq!(f.fingerprint.as_deref(), Some("00112233aabbccdd"));
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-11-01T23:00:00+00:00");

        let bad = FilterFields { priority: Some("urgent".into()), ..Default::default() };
        assert_eq!(bad.parse("filter.").unwrap_err().field.as_deref(), Some("filter.priority"));
        let bad = FilterFields { since: Some("yesterday".into()), ..Default::default() };
        assert_eq!(bad.parse("").unwrap_err().code, ErrorCode::InvalidQuery);
        let bad =
            FilterFields { since: Some("2026-11-02".into()), until: Some("2026-11-01".into()), ..Default::default() };
        assert!(bad.parse("").is_err());
        let bad = FilterFields { fingerprint: Some("xyz".into()), ..Default::default() };
        assert!(bad.parse("").is_err());
        let bad = FilterFields { stage: Some("  ".into()), ..Default::default() };
        assert!(bad.parse("").is_err());
    }
}
