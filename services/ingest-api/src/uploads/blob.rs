//! A document written to the blob store as it arrives, hashed and counted
//! on the way.

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Parts of one upload being sent to the store at once. With one in flight
/// while the next fills, an upload holds at most two parts in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// An upload in progress. Nothing is visible at `path` until [`finish`];
/// [`abort`] (or dropping it) removes whatever was written.
///
/// object_store's `BufWriter` does what a document needs: a file smaller
/// than one part is one plain `put` (as before streaming), a larger one a
/// multipart upload in parts of that size (S3 wants at least 5 MiB per part,
/// the local store takes any).
///
/// [`finish`]: BlobUpload::finish
/// [`abort`]: BlobUpload::abort
pub struct BlobUpload {
    path: Path,
    writer: Option<BufWriter>,
    hasher: Sha256,
    size: u64,
}

/// A complete blob, as stored.
#[derive(Debug)]
pub struct StoredBlob {
    pub path: Path,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

impl BlobUpload {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, part_size: usize) -> BlobUpload {
        let writer = BufWriter::with_capacity(store, path.clone(), part_size).with_max_concurrency(PARTS_IN_FLIGHT);
        BlobUpload { path, writer: Some(writer), hasher: Sha256::new(), size: 0 }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes the next bytes; waits while the parts in flight are full, so
    /// that a fast client cannot outrun the store into memory.
    pub async fn write(&mut self, chunk: Bytes) -> object_store::Result<()> {
        self.hasher.update(&chunk);
        self.size += chunk.len() as u64;
        match self.writer.as_mut() {
            Some(writer) => writer.put(chunk).await,
            None => unreachable!("a BlobUpload is not written after finish or abort"),
        }
    }

    /// Sends what is buffered and completes the upload: the blob is then at its path.
    pub async fn finish(mut self) -> std::io::Result<StoredBlob> {
        let Some(mut writer) = self.writer.take() else { unreachable!("finish is called once") };
        // On failure BufWriter has aborted the multipart upload itself.
        writer.shutdown().await?;
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        Ok(StoredBlob { path: self.path.clone(), size: self.size, sha256 })
    }

    /// Removes whatever was written (parts, staging files).
    pub async fn abort(mut self) {
        if let Some(mut writer) = self.writer.take()
            && let Err(error) = writer.abort().await
        {
            tracing::warn!(%error, path = %self.path, "could not abort an unfinished upload");
        }
    }
}

impl Drop for BlobUpload {
    /// A request that ends without [`BlobUpload::finish`] or
    /// [`BlobUpload::abort`] (its handler dropped at shutdown) still cleans up.
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else { return };
        let path = self.path.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = writer.abort().await {
                    tracing::warn!(%error, %path, "could not abort a dropped upload");
                }
            });
        }
    }
}
