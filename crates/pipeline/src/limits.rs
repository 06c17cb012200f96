//! Bounds on what a hostile document may make the pipeline do, in one place.
//!
//! Every document is outside input. The bounds are far above what any real
//! invoice needs (the largest file of the ZUGFeRD corpus is 2.3 MB with a
//! 60 kB XML), and low enough that a crafted file costs milliseconds and
//! megabytes, not minutes and gigabytes: a worker runs several jobs at once
//! and all of them must fit in its memory together.
//!
//! # Two kinds of limit
//!
//! **Too complex → the job fails.** A limit on the cost of reading the
//! document itself: going over it means the document cannot be read as
//! sent, and reading it again would go over it again. The job ends FAILED
//! at once with the permanent kind `document_too_complex` (no retry, no
//! partial result):
//!
//! - PDF pages: [`MAX_PDF_PAGES`], declared (`/Count`) or found;
//! - tokens the PDF parser would turn into objects ([`MAX_PDF_OBJECT_TOKENS`]),
//!   and how deep arrays and dictionaries nest ([`MAX_NESTING_DEPTH`]),
//!   counted from the bytes before the parser allocates them;
//! - decompressed bytes: of one object stream ([`MAX_OBJECT_STREAM_BYTES`]),
//!   of one cross-reference stream ([`MAX_XREF_STREAM_BYTES`]), of one page's
//!   content ([`MAX_PAGE_CONTENT_BYTES`]) and of all content of the document
//!   ([`MAX_DOCUMENT_CONTENT_BYTES`]);
//! - content-stream operators per page ([`MAX_PDF_OPERATORS`]), operands of
//!   one operator ([`MAX_OPERANDS`]), glyph runs per page ([`MAX_PAGE_RUNS`]);
//! - CPU time of the job's document work ([`DOCUMENT_CPU_TIME`],
//!   `PipelineConfig::document_cpu_budget`), and a stage timeout during which
//!   the stage's own work kept a core busy (see `Pipeline::run`).
//!
//! **Read what fits → the job goes on.** A limit on an optional extra the
//! document offers; past it, that extra is left out and the rest is read as
//! usual, and the result says so where it matters:
//!
//! - the e-invoice XML ([`MAX_XML_BYTES`], [`MAX_XML_NODES`],
//!   [`MAX_XML_DEPTH`]): an XML over them is not used, the fields are read
//!   from the visible text and `structured_error` says why;
//! - attachments looked at ([`MAX_ATTACHMENTS`]) and the depth of the trees
//!   walked to find them ([`MAX_TREE_DEPTH`]);
//! - a font's ToUnicode CMap ([`MAX_CMAP_BYTES`]): the font's own encoding
//!   is used instead;
//! - form XObjects nested deeper than [`MAX_FORM_DEPTH`] and graphics states
//!   saved deeper than [`MAX_GRAPHICS_STATES`] are not entered.
//!
//! Damage is neither: a page whose content cannot be decoded at all is
//! listed in `unreadable_pages` and the other pages are read.

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
/// Form XObjects entered inside one another.
pub const MAX_FORM_DEPTH: usize = 8;
/// Graphics states saved (`q`) inside one another.
pub const MAX_GRAPHICS_STATES: usize = 64;

/// Pages of a PDF. A real invoice or statement has a few, a long one some
/// dozens.
pub const MAX_PDF_PAGES: usize = 500;
/// Tokens (numbers, names, strings, brackets, keywords) outside content
/// streams: lopdf builds one `Object` of 120 bytes or more from each while
/// loading, so this bounds the memory of the parsed document (~30 MB).
/// The corpus's largest PDF has 8,518.
pub const MAX_PDF_OBJECT_TOKENS: usize = 250_000;
/// Arrays and dictionaries inside one another. lopdf itself stops at 100.
pub const MAX_NESTING_DEPTH: usize = 64;
/// Decompressed bytes of one object stream, inflated while the PDF is
/// loaded (`lopdf::LoadOptions::max_decompressed_size`).
pub const MAX_OBJECT_STREAM_BYTES: usize = 16 * 1024 * 1024;
/// Decompressed bytes of one cross-reference stream: lopdf keeps an entry
/// of ~40 bytes for every 3 to 10 of them.
pub const MAX_XREF_STREAM_BYTES: usize = 4 * 1024 * 1024;
/// Decompressed bytes of one page's content streams (and of one form
/// XObject's).
pub const MAX_PAGE_CONTENT_BYTES: usize = 8 * 1024 * 1024;
/// Decompressed content bytes of a whole document.
pub const MAX_DOCUMENT_CONTENT_BYTES: usize = 64 * 1024 * 1024;
/// Content-stream operators interpreted per page (form XObjects included).
/// The corpus's busiest page has 12,583.
pub const MAX_PDF_OPERATORS: usize = 1_000_000;
/// Operands of one content-stream operator, array elements included: lopdf
/// holds them all as `Object`s until the operator comes. A long `TJ` line
/// has a few hundred.
pub const MAX_OPERANDS: usize = 65_536;
/// Decompressed bytes of one font's ToUnicode CMap.
pub const MAX_CMAP_BYTES: usize = 1024 * 1024;
/// Glyph runs kept per page.
pub const MAX_PAGE_RUNS: usize = 200_000;
/// CPU time the document work of one job may use (validation,
/// classification, extraction and analysis together), by default.
pub const DOCUMENT_CPU_TIME: Duration = Duration::from_secs(15);

/// A document over one of the "too complex" limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TooComplex(String);

impl TooComplex {
    /// `what` (e.g. "page 3: content operators") went over `limit`.
    pub fn over(what: impl std::fmt::Display, limit: impl std::fmt::Display) -> Self {
        TooComplex(format!("{what}: more than the limit of {limit}"))
    }

    pub fn cpu(used: Duration, budget: Duration) -> Self {
        TooComplex(format!(
            "reading the document used {:.1} s of CPU, the budget is {:.1} s",
            used.as_secs_f64(),
            budget.as_secs_f64()
        ))
    }

    /// With what the document was being read for, e.g. "page 3".
    pub fn context(self, at: impl std::fmt::Display) -> Self {
        TooComplex(format!("{at}: {}", self.0))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}
