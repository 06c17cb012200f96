//! Blob store error mapping, shared by the stages that read or write blobs.

use object_store::path::Path;

use crate::error::{StageError, kind};

/// Parses a blob path from the job; a malformed one is the job's fault.
pub(crate) fn parse_path(raw: &str) -> Result<Path, StageError> {
    Path::parse(raw).map_err(|e| StageError::permanent(kind::INVALID_BLOB_PATH, format!("blob path {raw:?}: {e}")))
}

/// A missing object is permanent (the upload never completed or the blob
/// was purged: retrying finds nothing either); every other store error
/// (network, permissions, throttling) is retryable.
pub(crate) fn store_error(context: &str, e: object_store::Error) -> StageError {
    match e {
        object_store::Error::NotFound { path, .. } => {
            StageError::permanent(kind::BLOB_MISSING, format!("{context}: no blob at {path}"))
        }
        other => StageError::retryable(kind::BLOB_STORE_UNAVAILABLE, format!("{context}: {other}")),
    }
}
