//! The document a job is about, as one value wherever it travels: the
//! submission, the job row, the job message, the HTTP views.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::JobPriority;

/// What was submitted for processing and where its bytes are. Flattened
/// into every JSON shape that carries it, so the wire format is the six
/// fields side by side, as the seed had them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DocumentRef {
    /// The client's own id for the document; not unique (a document may be
    /// submitted again).
    pub document_id: String,
    pub filename: String,
    /// Where the bytes are, relative to the blob store's root.
    pub blob_path: String,
    /// Bytes, as stored.
    pub file_size: i64,
    pub priority: JobPriority,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}
