//! A job submission, parsed and checked field by field so every rejection
//! names its field and a machine-readable code.

use std::collections::BTreeMap;

use job_model::{DocumentRef, JobPriority};
use serde_json::{Map, Value};
use service_common::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};

/// Bounds on what a submission may carry.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_file_size: i64,
    pub max_tags: usize,
}

const MAX_DOCUMENT_ID: usize = 255;
const MAX_FILENAME: usize = 255;
const MAX_BLOB_PATH: usize = 1024;
const MAX_TAG_KEY: usize = 64;
const MAX_TAG_VALUE: usize = 256;

/// A valid request to process one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub document: DocumentRef,
    /// What identifies the file's content for idempotency: the blob path for
    /// `process-async`, the SHA-256 for uploads (whose path is per job).
    pub content_identity: String,
}

impl Submission {
    /// SHA-256 over the normalised request: two submissions with equal hashes
    /// are the same request for idempotency purposes.
    pub fn request_hash(&self) -> [u8; 32] {
        let canonical = serde_json::json!({
            "document_id": self.document.document_id,
            "filename": self.document.filename,
            "content": self.content_identity,
            "file_size": self.document.file_size,
            "priority": self.document.priority,
            "tags": self.document.tags,
        });
        Sha256::digest(canonical.to_string().as_bytes()).into()
    }
}

/// The fields of a submission before the blob is known (uploads learn the
/// path and size from the bytes they store).
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionFields {
    pub document_id: String,
    pub filename: Option<String>,
    pub priority: JobPriority,
    pub tags: BTreeMap<String, String>,
    /// The size the client says it sent (the seed's `file_size`); checked
    /// against the bytes actually received.
    pub declared_size: Option<i64>,
}

/// The text fields of a multipart upload (besides its `file` part).
pub const FORM_FIELDS: [&str; 5] = ["document_id", "filename", "file_size", "priority", "tags"];

const JSON_FIELDS: [&str; 6] = ["document_id", "filename", "blob_path", "file_size", "priority", "tags"];

impl Submission {
    /// Parses the JSON body of `POST /api/process-async`.
    pub fn from_json(body: &[u8], limits: &Limits) -> Result<Submission, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(ApiError::new(ErrorCode::InvalidJson, "the body must be a JSON object"));
        };
        if let Some(unknown) = object.keys().find(|k| !JSON_FIELDS.contains(&k.as_str())) {
            return Err(ApiError::field(
                ErrorCode::UnknownField,
                unknown.clone(),
                format!("unknown field {unknown:?}; expected one of {}", JSON_FIELDS.join(", ")),
            ));
        }
        let document_id = parse_document_id(required_string(&object, "document_id")?)?;
        let filename = parse_filename(required_string(&object, "filename")?)?;
        let blob_path = parse_blob_path(required_string(&object, "blob_path")?)?;
        let file_size = parse_file_size(object.get("file_size"), limits)?;
        let priority = parse_priority(object.get("priority"))?;
        let tags = parse_tags(object.get("tags"), limits)?;
        Ok(Submission {
            content_identity: format!("blob:{blob_path}"),
            document: DocumentRef { document_id, filename, blob_path, file_size, priority, tags },
        })
    }
}

impl SubmissionFields {
    /// Parses the text fields of a multipart upload.
    pub fn from_form(form: &BTreeMap<String, String>, limits: &Limits) -> Result<SubmissionFields, ApiError> {
        if let Some(unknown) = form.keys().find(|k| !FORM_FIELDS.contains(&k.as_str())) {
            return Err(ApiError::field(
                ErrorCode::UnknownField,
                unknown.clone(),
                format!("unknown form field {unknown:?}"),
            ));
        }
        let document_id = match form.get("document_id") {
            Some(s) => parse_document_id(s)?,
            None => return Err(missing("document_id")),
        };
        let filename = form.get("filename").map(|s| parse_filename(s)).transpose()?;
        let priority = parse_priority(form.get("priority").map(|s| Value::String(s.clone())).as_ref())?;
        let tags = match form.get("tags") {
            None => BTreeMap::new(),
            Some(raw) => {
                let value: Value = serde_json::from_str(raw).map_err(|_| {
                    ApiError::field(ErrorCode::InvalidTag, "tags", "tags must be a JSON object of strings")
                })?;
                parse_tags(Some(&value), limits)?
            }
        };
        let declared_size = form
            .get("file_size")
            .map(|raw| {
                raw.trim().parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::field(ErrorCode::InvalidFileSize, "file_size", "file_size must be a whole number above 0")
                })
            })
            .transpose()?;
        Ok(SubmissionFields { document_id, filename, priority, tags, declared_size })
    }

    /// Completes the submission once the bytes are stored.
    pub fn into_submission(self, filename: String, blob_path: String, file_size: i64, sha256_hex: &str) -> Submission {
        Submission {
            document: DocumentRef {
                document_id: self.document_id,
                filename,
                blob_path,
                file_size,
                priority: self.priority,
                tags: self.tags,
            },
            content_identity: format!("sha256:{sha256_hex}"),
        }
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::field(ErrorCode::MissingField, field, format!("{field} is required"))
}

fn required_string<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::field(ErrorCode::InvalidFieldType, field, format!("{field} must be a string"))),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::field(ErrorCode::MissingField, field, format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::field(
            ErrorCode::FieldTooLong,
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::field(
            ErrorCode::InvalidCharacters,
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

pub fn parse_document_id(value: &str) -> Result<String, ApiError> {
    check_text("document_id", value, MAX_DOCUMENT_ID)?;
    Ok(value.to_owned())
}

pub fn parse_filename(value: &str) -> Result<String, ApiError> {
    check_text("filename", value, MAX_FILENAME)?;
    if value.contains(['/', '\\']) {
        return Err(ApiError::field(
            ErrorCode::InvalidCharacters,
            "filename",
            "filename must not contain a path separator",
        ));
    }
    Ok(value.to_owned())
}

/// A path inside the blob store: relative, with no `..`, `.` or empty
/// segments, no backslashes and no control characters, so it can never
/// name anything outside the store.
pub fn parse_blob_path(value: &str) -> Result<String, ApiError> {
    let invalid = |why: &str| ApiError::field(ErrorCode::InvalidBlobPath, "blob_path", format!("blob_path {why}"));
    if value.is_empty() {
        return Err(missing("blob_path"));
    }
    if value.len() > MAX_BLOB_PATH {
        return Err(ApiError::field(
            ErrorCode::FieldTooLong,
            "blob_path",
            format!("blob_path is longer than {MAX_BLOB_PATH} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain NUL or control characters"));
    }
    if value.contains('\\') {
        return Err(invalid("must use '/' as separator, not '\\'"));
    }
    if value.starts_with('/') || value.contains(':') {
        return Err(invalid("must be relative to the blob store"));
    }
    if value.split('/').any(|segment| segment == "..") {
        return Err(invalid("must not contain '..'"));
    }
    if value.split('/').any(|segment| segment.is_empty() || segment == ".") {
        return Err(invalid("must not contain empty or '.' segments"));
    }
    // The store's own rules, last, so nothing it would refuse gets queued.
    object_store::path::Path::parse(value).map_err(|e| invalid(&format!("is not a valid store path: {e}")))?;
    Ok(value.to_owned())
}

fn parse_file_size(value: Option<&Value>, limits: &Limits) -> Result<i64, ApiError> {
    let size = match value {
        None | Some(Value::Null) => return Err(missing("file_size")),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ApiError::field(ErrorCode::InvalidFileSize, "file_size", "file_size must be a whole number of bytes")
        })?,
        Some(_) => {
            return Err(ApiError::field(ErrorCode::InvalidFieldType, "file_size", "file_size must be a number"));
        }
    };
    check_file_size(size, limits)?;
    Ok(size)
}

pub fn check_file_size(size: i64, limits: &Limits) -> Result<(), ApiError> {
    if size <= 0 {
        return Err(ApiError::field(ErrorCode::InvalidFileSize, "file_size", "file_size must be greater than 0"));
    }
    if size > limits.max_file_size {
        return Err(ApiError::field(
            ErrorCode::FileTooLarge,
            "file_size",
            format!("file_size is over the limit of {} bytes", limits.max_file_size),
        ));
    }
    Ok(())
}

fn parse_priority(value: Option<&Value>) -> Result<JobPriority, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(JobPriority::default()),
        Some(Value::String(s)) => s.parse().map_err(|e: job_model::UnknownPriority| {
            ApiError::field(ErrorCode::InvalidPriority, "priority", e.to_string())
        }),
        Some(_) => Err(ApiError::field(
            ErrorCode::InvalidPriority,
            "priority",
            "priority must be one of \"HIGH\", \"NORMAL\", \"LOW\"",
        )),
    }
}

fn parse_tags(value: Option<&Value>, limits: &Limits) -> Result<BTreeMap<String, String>, ApiError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::field(ErrorCode::InvalidTag, "tags", "tags must be an object of string values"));
        }
    };
    if object.len() > limits.max_tags {
        return Err(ApiError::field(
            ErrorCode::TooManyTags,
            "tags",
            format!("at most {} tags are allowed, got {}", limits.max_tags, object.len()),
        ));
    }
    let mut tags = BTreeMap::new();
    for (key, value) in object {
        let field = format!("tags.{key}");
        let Value::String(text) = value else {
            return Err(ApiError::field(ErrorCode::InvalidTag, field, format!("tag {key:?} must have a string value")));
        };
        if key.is_empty() || key.chars().count() > MAX_TAG_KEY || key.chars().any(char::is_control) {
            return Err(ApiError::field(
                ErrorCode::InvalidTag,
                field,
                format!("tag names must be 1 to {MAX_TAG_KEY} printable characters"),
            ));
        }
        if text.chars().count() > MAX_TAG_VALUE || text.chars().any(char::is_control) {
            return Err(ApiError::field(
                ErrorCode::InvalidTag,
                field,
                format!("tag values must be at most {MAX_TAG_VALUE} printable characters"),
            ));
        }
        tags.insert(key.clone(), text.clone());
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_file_size: 1000, max_tags: 2 }
    }

    fn code(body: serde_json::Value) -> ErrorCode {
        Submission::from_json(body.to_string().as_bytes(), &limits()).unwrap_err().code
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({"document_id": "d1", "filename": "a.pdf", "blob_path": "in/a.pdf", "file_size": 10})
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = valid();
        v[key] = value;
        v
    }

    #[test]
    fn a_minimal_request_parses_with_normal_priority() {
        let s = Submission::from_json(valid().to_string().as_bytes(), &limits()).unwrap();
        assert_eq!(s.document.priority, JobPriority::Normal);
        assert!(s.document.tags.is_empty());
    }

    #[test]
    fn blob_paths_that_could_escape_are_refused() {
        for bad in ["/etc/passwd", "a/../../b", "..", "a\\b", "a\u{0}b", "a\nb", "a//b", "./a", "c:/x"] {
            assert_eq!(code(with("blob_path", bad.into())), ErrorCode::InvalidBlobPath, "{bad:?}");
        }
        assert!(parse_blob_path("tenant/2026/inv..1.pdf").is_ok(), "dots inside a name are fine");
    }

    #[test]
    fn each_field_is_checked() {
        assert_eq!(
            code(serde_json::json!({"filename": "a", "blob_path": "a", "file_size": 1})),
            ErrorCode::MissingField
        );
        assert_eq!(code(with("document_id", 5.into())), ErrorCode::InvalidFieldType);
        assert_eq!(code(with("document_id", "x".repeat(256).into())), ErrorCode::FieldTooLong);
        assert_eq!(code(with("filename", "a\u{7}".into())), ErrorCode::InvalidCharacters);
        assert_eq!(code(with("file_size", 0.into())), ErrorCode::InvalidFileSize);
        assert_eq!(code(with("file_size", (-5).into())), ErrorCode::InvalidFileSize);
        assert_eq!(code(with("file_size", 1.5.into())), ErrorCode::InvalidFileSize);
        assert_eq!(code(with("file_size", 1001.into())), ErrorCode::FileTooLarge);
        assert_eq!(code(with("priority", "URGENT".into())), ErrorCode::InvalidPriority);
        assert_eq!(code(with("tags", serde_json::json!({"a": "1", "b": "2", "c": "3"}))), ErrorCode::TooManyTags);
        assert_eq!(code(with("tags", serde_json::json!({"a": 1}))), ErrorCode::InvalidTag);
        assert_eq!(code(with("tags", serde_json::json!(["a"]))), ErrorCode::InvalidTag);
        assert_eq!(code(with("colour", "red".into())), ErrorCode::UnknownField);
    }

    #[test]
    fn priority_names_are_case_insensitive() {
        let s = Submission::from_json(with("priority", "high".into()).to_string().as_bytes(), &limits()).unwrap();
        assert_eq!(s.document.priority, JobPriority::High);
    }

    #[test]
    fn request_hash_ignores_nothing_that_matters() {
        let a = Submission::from_json(valid().to_string().as_bytes(), &limits()).unwrap();
        let b = Submission::from_json(with("file_size", 11.into()).to_string().as_bytes(), &limits()).unwrap();
        assert_eq!(a.request_hash(), a.clone().request_hash());
        assert_ne!(a.request_hash(), b.request_hash());
    }
}
