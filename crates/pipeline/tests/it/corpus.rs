//! The shared document corpus (`../shared/corpus` next to the repository).
//! Tests that need it fail when it is missing: a skipped corpus test would
//! let a broken extractor pass.

use std::path::PathBuf;

/// `shared/corpus/einvoice-zugferd`, found from the workspace root.
pub fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/einvoice-zugferd");
    assert!(
        dir.is_dir(),
        "the e-invoice corpus is missing at {} (clone the shared corpus next to the repository)",
        dir.display()
    );
    dir
}

pub fn corpus_file(path: &str) -> PathBuf {
    corpus_dir().join(path)
}
