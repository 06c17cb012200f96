//! `POST /api/documents`: upload the file itself, then queue it.
//!
//! The body is read once, part by part, and never held whole: the text
//! fields go to a small map, the file straight to the blob store
//! ([`crate::uploads`]). The limits hold on the bytes actually read: the
//! file at `MAX_FILE_SIZE_BYTES`, the whole body at that plus room for the
//! form; crossing either stops reading and answers 413 at once. Whatever
//! stops an upload (a limit, a bad field, the store or the database) leaves
//! nothing behind: the partial blob is aborted, a stored one deleted.

use std::collections::BTreeMap;

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use service_common::error::ErrorBody;
use service_common::unread_body::refuse_unread;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::auth::Client;
use crate::domain::SubmissionFields;
use crate::domain::submission::{FORM_FIELDS, check_file_size, parse_filename};
use crate::routes::submit::{Accepted, enqueue};
use crate::routes::{check_content_length, idempotency_key, require_media_type};
use crate::state::AppState;
use crate::uploads::{BlobUpload, BodyStop, CountedBody, StoredBlob};

/// Room for the form's text fields and multipart framing around the file.
const FORM_OVERHEAD: usize = 256 * 1024;
const MAX_TEXT_FIELD: usize = 16 * 1024;

/// The multipart form (documentation of its shape).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The document's bytes; its part's filename is used unless `filename` is sent.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    document_id: String,
    /// The file's name (default: the file part's filename). Sent before the
    /// file part, it also names the stored blob.
    filename: Option<String>,
    /// The file's size in bytes, as the seed API takes it; when sent it must
    /// match the uploaded part (422 `invalid_file_size` otherwise).
    file_size: Option<i64>,
    /// HIGH, NORMAL (default) or LOW.
    priority: Option<String>,
    /// A JSON object of string tags.
    tags: Option<String>,
}

#[utoipa::path(
    tag = "jobs",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Returns the same job for a repeated request")),
    responses(
        (status = 202, description = "Stored and queued durably", body = Accepted),
        (status = 400, description = "Malformed multipart body, a field sent twice", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 409, description = "Idempotency key reused with a different body", body = ErrorBody),
        (status = 408, description = "The client stopped sending the body for UPLOAD_IDLE_TIMEOUT_MS", body = ErrorBody),
        (status = 413, description = "File or body too large (checked on the bytes read, chunked or not)", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database or blob store unavailable, or too many uploads at once (`server_busy`); retry after Retry-After", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[post("/api/documents")]
pub async fn upload_document(
    _client: Client,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let max_file = usize::try_from(state.limits.max_file_size).unwrap_or(usize::MAX);
    let max_body = max_file.saturating_add(FORM_OVERHEAD);
    let checked = require_media_type(&req, |m| m == "multipart/form-data", "multipart/form-data")
        .and_then(|()| check_content_length(&req, max_body))
        .and_then(|()| idempotency_key(&req));
    let key = match checked {
        Ok(key) => key,
        Err(error) => return refuse_unread(error, payload),
    };
    // Taken before any of the body is read, held until the answer.
    let _slot = match state.upload_slots.acquire().await {
        Ok(slot) => slot,
        Err(error) => return refuse_unread(error, payload),
    };

    let (body, stop) = CountedBody::new(payload, max_body, state.uploads.idle_timeout);
    let mut multipart = Multipart::new(req.headers(), body);
    let mut upload = None;
    let outcome = async {
        let received = receive(&mut multipart, &stop, &mut upload, &state, max_file).await?;
        let checked = check(received, upload.as_ref().map(BlobUpload::size), &state)?;
        let Some(blob) = upload.take() else { return Err(missing_file()) };
        let stored = blob.finish().await.map_err(blob_store_unavailable)?;
        queue(checked, stored, &state, key).await
    }
    .await;
    match outcome {
        Ok(response) => response,
        Err(error) => {
            if let Some(upload) = upload.take() {
                upload.abort().await;
            }
            refuse_unread(error, multipart)
        }
    }
}

/// What the body held: the text fields, and the file part's own filename
/// (`Some(None)`: a file part without one).
struct Received {
    form: BTreeMap<String, String>,
    file_part: Option<Option<String>>,
}

/// Reads every part. The file goes into `upload` as it arrives; the caller
/// aborts it if anything fails, here or later.
async fn receive(
    multipart: &mut Multipart,
    stop: &BodyStop,
    upload: &mut Option<BlobUpload>,
    state: &AppState,
    max_file: usize,
) -> Result<Received, ApiError> {
    let mut form = BTreeMap::new();
    let mut file_part = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| stop.error_or(invalid_multipart(e)))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file_part.is_some() {
                return Err(ApiError::field(ErrorCode::InvalidMultipart, "file", "send exactly one file part"));
            }
            let part_name = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
            let store_as = store_name(form.get("filename").or(part_name.as_ref()).map_or("document", String::as_str));
            let path = Path::from_iter(["uploads", &Uuid::now_v7().to_string(), &store_as]);
            let blob = upload.insert(BlobUpload::new(state.blobs.clone(), path, state.uploads.part_size));
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| stop.error_or(invalid_multipart(e)))?;
                if blob.size().saturating_add(chunk.len() as u64) > max_file as u64 {
                    return Err(ApiError::field(
                        ErrorCode::PayloadTooLarge,
                        "file",
                        format!("the file is larger than {max_file} bytes"),
                    ));
                }
                blob.write(chunk).await.map_err(blob_store_unavailable)?;
            }
            file_part = Some(part_name);
        } else {
            // Refused before its bytes are read: a form has each field once.
            if !FORM_FIELDS.contains(&name.as_str()) {
                return Err(ApiError::field(
                    ErrorCode::UnknownField,
                    name.clone(),
                    format!("unknown form field {name:?}"),
                ));
            }
            if form.contains_key(&name) {
                return Err(ApiError::field(
                    ErrorCode::InvalidMultipart,
                    name.clone(),
                    format!("{name} is sent twice"),
                ));
            }
            let text = read_text(&mut field, &name, stop).await?;
            form.insert(name, text);
        }
    }
    Ok(Received { form, file_part })
}

/// The submission's fields, checked against the file received (`file_size`
/// bytes, `None` without a file part).
struct Checked {
    fields: SubmissionFields,
    filename: String,
}

fn check(received: Received, file_size: Option<u64>, state: &AppState) -> Result<Checked, ApiError> {
    let fields = SubmissionFields::from_form(&received.form, &state.limits)?;
    let (Some(part_name), Some(size)) = (received.file_part, file_size) else {
        return Err(missing_file());
    };
    let filename = match fields.filename.clone().or(part_name) {
        Some(name) => parse_filename(&name)?,
        None => {
            return Err(ApiError::field(
                ErrorCode::MissingField,
                "filename",
                "name the file in its part or a 'filename' field",
            ));
        }
    };
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    check_file_size(size, &state.limits)?;
    if let Some(declared) = fields.declared_size
        && declared != size
    {
        return Err(ApiError::field(
            ErrorCode::InvalidFileSize,
            "file_size",
            format!("file_size says {declared} bytes but the file part has {size}"),
        ));
    }
    Ok(Checked { fields, filename })
}

/// Commits the job for a stored blob; a blob no new job refers to is deleted.
async fn queue(
    checked: Checked,
    blob: StoredBlob,
    state: &AppState,
    key: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let size = i64::try_from(blob.size).unwrap_or(i64::MAX);
    let submission = checked.fields.into_submission(checked.filename, blob.path.to_string(), size, &blob.sha256);
    let result = enqueue(state, submission, key).await;
    // Only a newly created job refers to the blob just written; anything
    // else (a repeat, a conflict, an error) would leave it orphaned.
    let created = matches!(&result, Ok(r) if r.headers().get("idempotent-replayed").is_none());
    if !created && let Err(e) = state.blobs.delete(&blob.path).await {
        tracing::warn!(error = %e, path = %blob.path, "could not remove an unused upload");
    }
    result
}

fn missing_file() -> ApiError {
    ApiError::field(ErrorCode::MissingField, "file", "a 'file' part is required")
}

async fn read_text(field: &mut Field, name: &str, stop: &BodyStop) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| stop.error_or(invalid_multipart(e)))?;
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ApiError::field(
                ErrorCode::FieldTooLong,
                name,
                format!("{name} is longer than {MAX_TEXT_FIELD} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::field(ErrorCode::InvalidCharacters, name, "form fields must be UTF-8"))
}

fn invalid_multipart(e: MultipartError) -> ApiError {
    ApiError::new(ErrorCode::InvalidMultipart, format!("malformed multipart body: {e}"))
}

fn blob_store_unavailable(error: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%error, "blob store write failed");
    ApiError::new(ErrorCode::ServiceUnavailable, "the blob store is unavailable; retry later")
        .retry_after(std::time::Duration::from_secs(5))
}

/// A file name safe as a store path segment; the original stays in the job row.
fn store_name(filename: &str) -> String {
    let cleaned: String = filename
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    match cleaned.trim_matches('.') {
        "" => "document".to_owned(),
        name => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::store_name;

    #[test]
    fn store_names_are_plain() {
        assert_eq!(store_name("Rechnung März.pdf"), "Rechnung_M_rz.pdf");
        assert_eq!(store_name(".."), "document");
    }
}
