//! Receiving uploaded documents with bounded memory: the body is counted as
//! it is read ([`body`]), the file goes to the blob store as it arrives
//! ([`blob`]), and only so many uploads are received at once ([`slots`]).
//!
//! What one upload can cost in memory: two store parts
//! (`UPLOAD_PART_SIZE_BYTES`: one being sent, one filling), actix-multipart's
//! parse buffer (64 KiB) and the form's text fields (16 KiB each, at most
//! five). Times `MAX_CONCURRENT_UPLOADS`, that bounds what uploads hold,
//! whatever their size.

pub mod blob;
pub mod body;
pub mod slots;

pub use blob::{BlobUpload, StoredBlob};
pub use body::{BodyStop, CountedBody};
pub use slots::UploadSlots;

/// How uploads are received (from the settings).
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Bytes per part written to the blob store.
    pub part_size: usize,
    /// How long the body may stay silent while it is read.
    pub idle_timeout: std::time::Duration,
}
