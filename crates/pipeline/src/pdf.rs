//! PDF checks and text extraction on top of `lopdf`. All functions here are
//! synchronous and CPU-bound: stages call them through `blocking`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::Document as PdfDocument;

use crate::budget::{Meter, Stopped, WorkBudget};
use crate::limits::TooComplex;
use crate::pipeline::panic_message;

/// Why a PDF is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdfProblem {
    /// The trailer names an `/Encrypt` dictionary: the content cannot be
    /// read without a password (or must not be processed as plain content).
    Encrypted,
    /// Not parseable as a PDF, truncated, or without pages.
    Broken(String),
    /// Over a limit of [`crate::limits`] (or cancelled): not parsed.
    Stopped(Stopped),
}

impl From<Stopped> for PdfProblem {
    fn from(stopped: Stopped) -> Self {
        PdfProblem::Stopped(stopped)
    }
}

impl From<TooComplex> for PdfProblem {
    fn from(too_complex: TooComplex) -> Self {
        PdfProblem::Stopped(Stopped::TooComplex(too_complex))
    }
}

/// Finds a PDF name token (`/Encrypt`, not `/EncryptMetadata`).
fn contains_name(haystack: &[u8], name: &[u8]) -> bool {
    haystack
        .windows(name.len())
        .enumerate()
        .any(|(i, w)| w == name && haystack.get(i + name.len()).is_none_or(|&b| !b.is_ascii_alphanumeric()))
}

/// Whether a trailer (classic `trailer << ... >>` or a cross-reference
/// stream dictionary) declares encryption. Used when lopdf cannot load the
/// file at all, so that a damaged encrypted file is still reported as
/// encrypted.
fn raw_trailer_declares_encryption(bytes: &[u8]) -> bool {
    // Classic trailers: look after each `trailer` keyword.
    let mut rest = bytes;
    while let Some(pos) = rest.windows(7).position(|w| w == b"trailer") {
        let after = &rest[pos + 7..];
        let end = after.windows(9).position(|w| w == b"startxref").unwrap_or(after.len().min(4096));
        if contains_name(&after[..end], b"/Encrypt") {
            return true;
        }
        rest = after;
    }
    // Cross-reference streams: the dictionary holding `/Type /XRef`.
    bytes.windows(10).enumerate().any(|(i, w)| {
        (w == b"/Type/XRef" || w == b"/Type /XRe")
            && contains_name(&bytes[i.saturating_sub(2048)..(i + 2048).min(bytes.len())], b"/Encrypt")
    })
}

/// Whether the file ends with an end-of-file marker. The spec puts `%%EOF`
/// at the very end and readers look for it within the last 1024 bytes; a
/// file without one was cut off (an interrupted upload), even when lopdf's
/// lenient parser can still rebuild parts of it.
fn has_eof_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(5).any(|w| w == b"%%EOF")
}

/// Parses and checks a PDF under the default CPU budget
/// ([`crate::limits::DOCUMENT_CPU_TIME`]); see [`load_metered`].
pub fn load(bytes: &[u8]) -> Result<PdfDocument, PdfProblem> {
    load_metered(bytes, &WorkBudget::new(crate::limits::DOCUMENT_CPU_TIME).meter())
}

/// Parses and checks a PDF: within the limits, not encrypted, complete,
/// with at least one page.
pub fn load_metered(bytes: &[u8], meter: &Meter) -> Result<PdfDocument, PdfProblem> {
    // lopdf cannot be stopped once it parses, and what it builds is ~100
    // times the bytes: count what it would build first.
    crate::cost::check_document(bytes, meter)?;
    // lopdf is a parser of untrusted input; should it panic on a crafted
    // file, that is a broken document, not a crash.
    // Object and cross-reference streams are inflated while loading: bound
    // each one (lopdf's default is 256 MiB), as the check above did.
    let options = lopdf::LoadOptions::with_max_decompressed_size(crate::limits::MAX_OBJECT_STREAM_BYTES);
    let loaded = catch_unwind(AssertUnwindSafe(|| PdfDocument::load_mem_with_options(bytes, options)))
        .map_err(|p| PdfProblem::Broken(format!("parser panicked: {}", panic_message(p.as_ref()))))?;
    let doc = match loaded {
        Ok(doc) => doc,
        Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { limit })) => {
            return Err(TooComplex::over("decompressed bytes of a stream read while loading", limit).into());
        }
        Err(_) if raw_trailer_declares_encryption(bytes) => return Err(PdfProblem::Encrypted),
        Err(e) => return Err(PdfProblem::Broken(e.to_string())),
    };
    meter.check()?;
    // lopdf decrypts documents with an empty user password itself and then
    // drops `/Encrypt` from the trailer; `encryption_state` remembers it.
    if doc.trailer.has(b"Encrypt") || doc.encryption_state.is_some() {
        return Err(PdfProblem::Encrypted);
    }
    if !has_eof_marker(bytes) {
        return Err(PdfProblem::Broken("truncated: no %%EOF marker at the end of the file".to_owned()));
    }
    check_page_count(&doc)?;
    Ok(doc)
}

/// The pages the page tree declares (`/Count`) and the pages found in it,
/// both within [`crate::limits::MAX_PDF_PAGES`], and at least one.
fn check_page_count(doc: &PdfDocument) -> Result<(), PdfProblem> {
    let max = crate::limits::MAX_PDF_PAGES;
    let declared = doc
        .catalog()
        .and_then(|c| c.get_deref(b"Pages", doc))
        .and_then(|p| p.as_dict())
        .and_then(|p| p.get_deref(b"Count", doc))
        .and_then(|c| c.as_i64());
    if let Ok(count) = declared
        && usize::try_from(count).is_ok_and(|c| c > max)
    {
        return Err(TooComplex::over(format!("{count} pages declared"), max).into());
    }
    let found = doc.page_iter().take(max + 1).count();
    if found > max {
        return Err(TooComplex::over("the pages of the page tree", max).into());
    }
    if found == 0 {
        return Err(PdfProblem::Broken("the document has no pages".to_owned()));
    }
    Ok(())
}

/// Runs `f` over parsed PDF objects, turning a panic into an error: lopdf
/// and our walkers over its objects see untrusted structures.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| format!("panicked reading the PDF: {}", panic_message(p.as_ref())))
}

/// Text of a PDF, page by page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfText {
    pub text: String,
    pub pages: u32,
    /// Pages whose content could not be decoded (their text is missing).
    pub unreadable_pages: Vec<u32>,
}

/// How PDF text is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextEngine {
    /// In reading order, by position ([`crate::layout`]): the pipeline's.
    #[default]
    Layout,
    /// In content-stream order (lopdf's `extract_text`): kept to compare.
    StreamOrder,
}

/// The text of the first `max_pages` pages (all when `None`), under the
/// default CPU budget. Fails on a document over a limit of
/// [`crate::limits`].
pub fn text(doc: &PdfDocument, max_pages: Option<u32>, engine: TextEngine) -> Result<PdfText, Stopped> {
    match engine {
        TextEngine::Layout => {
            crate::layout::extract_text(doc, max_pages, &WorkBudget::new(crate::limits::DOCUMENT_CPU_TIME).meter())
        }
        TextEngine::StreamOrder => Ok(extract_text_stream_order(doc, max_pages)),
    }
}

/// The text of the first `max_pages` pages (all when `None`) in
/// content-stream order, as lopdf gives it. A page that fails to decode is
/// recorded and skipped: one damaged page should not lose the text of the
/// others.
pub fn extract_text_stream_order(doc: &PdfDocument, max_pages: Option<u32>) -> PdfText {
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let total = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    let mut out = PdfText { pages: total, ..PdfText::default() };
    for page in pages.into_iter().take(max_pages.map_or(usize::MAX, |m| m as usize)) {
        let chunk = catch_unwind(AssertUnwindSafe(|| {
            doc.extract_text_with_limit(&[page], crate::limits::MAX_PAGE_CONTENT_BYTES)
        }));
        match chunk {
            Ok(Ok(text)) => {
                if !out.text.is_empty() && !out.text.ends_with('\n') {
                    out.text.push('\n');
                }
                out.text.push_str(&text);
            }
            _ => out.unreadable_pages.push(page),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tokens_are_whole() {
        assert!(contains_name(b"<< /Encrypt 5 0 R >>", b"/Encrypt"));
        assert!(!contains_name(b"<< /EncryptMetadata false >>", b"/Encrypt"));
        assert!(raw_trailer_declares_encryption(b"trailer\n<< /Root 1 0 R /Encrypt 9 0 R >>\nstartxref\n0\n%%EOF"));
        assert!(!raw_trailer_declares_encryption(b"trailer\n<< /Root 1 0 R >>\nstartxref\n0\n%%EOF"));
    }

    #[test]
    fn garbage_is_broken() {
        assert!(matches!(load(b"%PDF-1.7\nthis is not a pdf"), Err(PdfProblem::Broken(_))));
    }
}
