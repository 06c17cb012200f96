//! Stage 1: fetch the blob, check its size against the job, hash it.

use async_trait::async_trait;
use bytes::Bytes;
use object_store::ObjectStoreExt;

use super::names;
use crate::blob::{parse_path, store_error};
use crate::context::StageContext;
use crate::error::{StageError, kind};
use crate::pipeline::{Stage, StageReport, blocking};

/// The document's bytes, as stored.
#[derive(Clone)]
pub struct UploadOutput {
    pub bytes: Bytes,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

impl std::fmt::Debug for UploadOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadOutput").field("size", &self.size).field("sha256", &self.sha256).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Upload;

fn size_mismatch(declared: i64, actual: u64) -> StageError {
    StageError::permanent(kind::SIZE_MISMATCH, format!("job declares {declared} bytes, the blob has {actual}"))
}

#[async_trait]
impl Stage for Upload {
    fn name(&self) -> &'static str {
        names::UPLOAD
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let path = parse_path(&ctx.document.blob_path)?;
        let declared = ctx.document.file_size;
        let result = ctx.blobs.get(&path).await.map_err(|e| store_error("fetch document", e))?;
        // Compare sizes before reading the body: a wrong blob is not worth
        // downloading.
        if u64::try_from(declared).ok() != Some(result.meta.size) {
            return Err(size_mismatch(declared, result.meta.size));
        }
        let bytes = result.bytes().await.map_err(|e| store_error("read document", e))?;
        let size = bytes.len() as u64;
        if u64::try_from(declared).ok() != Some(size) {
            return Err(size_mismatch(declared, size));
        }
        let for_hash = bytes.clone();
        let sha256 = blocking(&ctx.work, move |_| super::sha256_hex(&for_hash)).await?;
        ctx.upload = Some(UploadOutput { bytes, size, sha256 });
        Ok(StageReport::new(1, size))
    }
}
