//! Bounds on what a hostile document may make the pipeline do, in one place.
//!
//! Every document is outside input. The bounds are far above what any real
//! invoice needs (the largest file of the ZUGFeRD corpus is 2.3 MB with a
//! 60 kB XML), and low enough that a crafted file costs milliseconds and
//! megabytes, not minutes and gigabytes. The stage time limits
//! (`PipelineConfig::timeout_for`) are the backstop above these.

use std::time::Duration;

/// Largest invoice XML read, bare or embedded (decompressed bytes).
pub const MAX_XML_BYTES: usize = 16 * 1024 * 1024;
/// Most XML nodes (elements, text, attributes' parents...) kept in the
/// tree: `roxmltree::ParsingOptions::nodes_limit`. The largest corpus XML
/// has about 6,000.
pub const MAX_XML_NODES: u32 = 500_000;
/// Deepest element nesting accepted. EN 16931 needs about 8 levels.
pub const MAX_XML_DEPTH: usize = 64;

/// Attachments looked at in one PDF.
pub const MAX_ATTACHMENTS: usize = 64;
/// Depth of the PDF trees walked (name trees, page trees, form XObjects).
pub const MAX_TREE_DEPTH: usize = 16;

/// Decompressed bytes of one object or cross-reference stream, inflated
/// while the PDF is loaded (`lopdf::LoadOptions::max_decompressed_size`).
pub const MAX_OBJECT_STREAM_BYTES: usize = 32 * 1024 * 1024;
/// Pages whose text is read.
pub const MAX_PDF_PAGES: usize = 500;
/// Decompressed bytes of one page's content streams. lopdf parses content
/// into operations about 550 times larger than these bytes, so the layout
/// pass never collects them: it iterates and stops at `MAX_PDF_OPERATORS`.
pub const MAX_PAGE_CONTENT_BYTES: usize = 8 * 1024 * 1024;
/// Decompressed content bytes of a whole document.
pub const MAX_DOCUMENT_CONTENT_BYTES: usize = 64 * 1024 * 1024;
/// Content-stream operators interpreted per page (form XObjects included).
pub const MAX_PDF_OPERATORS: usize = 1_000_000;
/// Decompressed bytes of one font's ToUnicode CMap.
pub const MAX_CMAP_BYTES: usize = 1024 * 1024;
/// Glyph runs kept per page.
pub const MAX_PAGE_RUNS: usize = 200_000;
/// Wall-clock spent on the text of one document; what is read by then is
/// kept and the rest of the pages are reported unreadable.
pub const MAX_TEXT_TIME: Duration = Duration::from_secs(20);
