//! Stage failures. The split between permanent and retryable is the one the
//! worker acts on (DESIGN.md, "Job lifecycle"): a permanent error means the
//! document itself is bad and the job goes to FAILED at once; a retryable
//! one means something around it (blob store, database, time) failed and
//! the job is retried with backoff, then dead-lettered.

use serde::Serialize;

/// Stable machine-readable error codes. They end up in `jobs.error_message`,
/// events, metrics labels and alerts, so they never change meaning.
pub mod kind {
    // Permanent: the document.
    pub const BLOB_MISSING: &str = "blob_missing";
    pub const INVALID_BLOB_PATH: &str = "invalid_blob_path";
    pub const SIZE_MISMATCH: &str = "size_mismatch";
    pub const EMPTY: &str = "empty";
    pub const TOO_LARGE: &str = "too_large";
    pub const UNSUPPORTED_TYPE: &str = "unsupported_type";
    pub const ENCRYPTED: &str = "encrypted";
    pub const BROKEN_PDF: &str = "broken_pdf";
    pub const INVALID_TEXT: &str = "invalid_text";
    /// Over a "too complex" limit (`crate::limits`): reading the document
    /// would cost more memory or CPU than any real one needs.
    pub const DOCUMENT_TOO_COMPLEX: &str = "document_too_complex";
    // Permanent: the pipeline itself.
    pub const PANIC: &str = "panic";
    pub const MISSING_INPUT: &str = "missing_input";
    pub const DATABASE_CONSTRAINT: &str = "database_constraint";
    pub const INTERNAL: &str = "internal";
    // Retryable: the surroundings.
    pub const BLOB_STORE_UNAVAILABLE: &str = "blob_store_unavailable";
    pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";
    pub const DATABASE_ERROR: &str = "database_error";
    pub const TIMEOUT: &str = "timeout";
    pub const CANCELLED: &str = "cancelled";
}

/// Why a stage failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum StageError {
    /// Retrying cannot help: the document is invalid (or the pipeline has a
    /// bug that would fail the same way again).
    #[error("{kind}: {message}")]
    Permanent { kind: &'static str, message: String },
    /// A dependency was unavailable or too slow; the same document may pass
    /// on a later attempt.
    #[error("{kind} (retryable): {message}")]
    Retryable { kind: &'static str, message: String },
}

impl StageError {
    pub fn permanent(kind: &'static str, message: impl Into<String>) -> StageError {
        StageError::Permanent { kind, message: message.into() }
    }

    pub fn retryable(kind: &'static str, message: impl Into<String>) -> StageError {
        StageError::Retryable { kind, message: message.into() }
    }

    /// The stable code, e.g. `"blob_missing"` (see [`kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            StageError::Permanent { kind, .. } | StageError::Retryable { kind, .. } => kind,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StageError::Permanent { message, .. } | StageError::Retryable { message, .. } => message,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StageError::Retryable { .. })
    }

    pub fn is_permanent(&self) -> bool {
        !self.is_retryable()
    }
}

impl From<crate::budget::Stopped> for StageError {
    fn from(stopped: crate::budget::Stopped) -> Self {
        match stopped {
            crate::budget::Stopped::TooComplex(e) => StageError::permanent(kind::DOCUMENT_TOO_COMPLEX, e.to_string()),
            crate::budget::Stopped::Cancelled => StageError::retryable(kind::CANCELLED, stopped.to_string()),
        }
    }
}

/// A problem with the pipeline's configuration, found when it is built (at
/// worker start), never while a document is processed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read rules file {path}: {source}")]
    ReadRules { path: String, source: std::io::Error },
    #[error("invalid rules in {origin}: {message}")]
    InvalidRules { origin: String, message: String },
    #[error("no stage named {0:?} in the pipeline")]
    UnknownStage(String),
}
