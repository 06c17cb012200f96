//! The blob store, from `BLOB_STORE_URL`.

use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

/// Opens the store a URL names. `file://DIR` (relative or absolute) is a local
/// directory, created if missing; other schemes (s3://, gs://, az://) go to
/// `object_store::parse_url_opts`, configured from the environment, and need
/// the matching object_store feature in the build.
pub fn open(url: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if let Some(dir) = url.strip_prefix("file://") {
        std::fs::create_dir_all(dir).with_context(|| format!("creating blob directory {dir}"))?;
        let store = LocalFileSystem::new_with_prefix(dir).with_context(|| format!("opening blob directory {dir}"))?;
        return Ok(Arc::new(store));
    }
    let parsed = url::Url::parse(url).with_context(|| format!("BLOB_STORE_URL {url:?} is not a URL"))?;
    let (store, prefix) = object_store::parse_url_opts(&parsed, std::env::vars())
        .with_context(|| format!("BLOB_STORE_URL {url:?} names a store this build cannot open"))?;
    let store: Arc<dyn ObjectStore> = Arc::from(store);
    Ok(if prefix.as_ref().is_empty() { store } else { Arc::new(object_store::prefix::PrefixStore::new(store, prefix)) })
}
