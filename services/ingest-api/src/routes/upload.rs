//! `POST /api/documents`: upload the file itself, then queue it.

use std::collections::BTreeMap;

use actix_multipart::{Field, Multipart};
use actix_web::{HttpRequest, HttpResponse, post, web};
use bytes::BytesMut;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Client;
use crate::domain::SubmissionFields;
use crate::domain::submission::{check_file_size, parse_filename};
use crate::routes::submit::{Accepted, enqueue};
use crate::routes::{check_content_length, idempotency_key, require_media_type};
use crate::state::AppState;

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
        (status = 400, description = "Malformed multipart body", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 409, description = "Idempotency key reused with a different body", body = ErrorBody),
        (status = 413, description = "File too large", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable; retry later", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[post("/api/documents")]
pub async fn upload_document(
    _client: Client,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_media_type(&req, |m| m == "multipart/form-data", "multipart/form-data")?;
    let max_file = usize::try_from(state.limits.max_file_size).unwrap_or(usize::MAX);
    check_content_length(&req, max_file.saturating_add(FORM_OVERHEAD))?;
    let key = idempotency_key(&req)?;

    let mut multipart = Multipart::new(req.headers(), payload);
    let mut form = BTreeMap::new();
    let mut file: Option<(Option<String>, web::Bytes)> = None;
    while let Some(field) = multipart.next().await {
        let field = field.map_err(invalid_multipart)?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(ApiError::field(ErrorCode::InvalidMultipart, "file", "send exactly one file part"));
            }
            let part_name = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
            file = Some((part_name, read_field(field, max_file, "file").await?));
        } else {
            let bytes = read_field(field, MAX_TEXT_FIELD, &name).await?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::field(ErrorCode::InvalidCharacters, name.clone(), "form fields must be UTF-8")
            })?;
            form.insert(name, text);
        }
    }

    let fields = SubmissionFields::from_form(&form, &state.limits)?;
    let Some((part_name, bytes)) = file else {
        return Err(ApiError::field(ErrorCode::MissingField, "file", "a 'file' part is required"));
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
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
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

    let sha256 = hex::encode(Sha256::digest(&bytes));
    let path = Path::from_iter(["uploads", &Uuid::now_v7().to_string(), &store_name(&filename)]);
    state.blobs.put(&path, bytes.into()).await.map_err(|e| {
        tracing::warn!(error = %e, "blob store write failed");
        ApiError::new(ErrorCode::ServiceUnavailable, "the blob store is unavailable; retry later")
            .retry_after(std::time::Duration::from_secs(5))
    })?;

    let submission = fields.into_submission(filename, path.to_string(), size, &sha256);
    let result = enqueue(&state, submission, key).await;
    // Only a newly created job refers to the blob just written; anything
    // else (a repeat, a conflict, an error) would leave it orphaned.
    let created = matches!(&result, Ok(r) if r.headers().get("idempotent-replayed").is_none());
    if !created && let Err(e) = state.blobs.delete(&path).await {
        tracing::warn!(error = %e, %path, "could not remove an unused upload");
    }
    result
}

async fn read_field(mut field: Field, limit: usize, name: &str) -> Result<web::Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(invalid_multipart)?;
        if buf.len() + chunk.len() > limit {
            return Err(if name == "file" {
                ApiError::field(ErrorCode::PayloadTooLarge, "file", format!("the file is larger than {limit} bytes"))
            } else {
                ApiError::field(ErrorCode::FieldTooLong, name, format!("{name} is longer than {limit} bytes"))
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn invalid_multipart(e: actix_multipart::MultipartError) -> ApiError {
    ApiError::new(ErrorCode::InvalidMultipart, format!("malformed multipart body: {e}"))
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
