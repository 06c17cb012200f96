//! Stage 4: the document's text. PDFs page by page, text formats decoded
//! (CSV and XML turned into label/value lines); images have no text and are
//! marked `needs_ocr`, which is not a failure.

use async_trait::async_trait;

use super::names;
use crate::context::StageContext;
use crate::error::StageError;
use crate::layout::PdfPages;
use crate::pipeline::{Stage, StageReport, blocking};
use crate::sniff::DocumentFormat;
use crate::text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractionOutput {
    pub text: String,
    pub page_count: u32,
    /// No text layer: a scan or photo that needs OCR or a person.
    pub needs_ocr: bool,
    /// Hex SHA-256 of `text`: identifies the content independent of the
    /// file's bytes (the same invoice re-exported has the same digest).
    pub text_sha256: String,
    pub text_chars: usize,
    /// PDF pages whose content could not be decoded.
    pub unreadable_pages: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Extraction;

/// Text of a text-format document. Bytes that are not valid UTF-8 (e.g. a
/// prefix cut inside a character) are decoded lossily: validation already
/// checked the document as a whole.
pub(crate) fn document_text(format: DocumentFormat, bytes: &[u8]) -> String {
    let decoded = match text::decode(bytes) {
        Some(t) => std::borrow::Cow::Borrowed(t),
        None => String::from_utf8_lossy(crate::sniff::strip_bom(bytes)),
    };
    match format {
        DocumentFormat::Csv => text::csv_to_text(&decoded),
        DocumentFormat::Xml => text::xml_to_text(&decoded),
        _ => decoded.replace("\r\n", "\n"),
    }
}

/// Lays out the PDF's pages up to `up_to` (all when `None`) that earlier
/// stages have not, off the async workers and under the job's budget, and
/// keeps them in the context for the stages after.
pub(crate) async fn read_pdf_pages(ctx: &mut StageContext, up_to: Option<u32>) -> Result<&PdfPages, StageError> {
    let doc = super::validation::pdf_of(ctx).await?;
    let mut pages = ctx.pdf_pages.take().unwrap_or_default();
    let (pages, read) = blocking(&ctx.work, move |meter| {
        if pages.read.is_empty() {
            pages = PdfPages::new(&doc);
        }
        let read = pages.read(&doc, up_to, meter);
        (pages, read)
    })
    .await?;
    read?;
    Ok(ctx.pdf_pages.insert(pages))
}

#[async_trait]
impl Stage for Extraction {
    fn name(&self) -> &'static str {
        names::EXTRACTION
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let format = ctx.validation_output()?.format;
        let (text, page_count, unreadable_pages) = match format {
            DocumentFormat::Pdf => {
                let out = read_pdf_pages(ctx, None).await?.text();
                (out.text, out.pages, out.unreadable_pages)
            }
            f if f.is_text() => {
                let bytes = ctx.upload_output()?.bytes.clone();
                (blocking(&ctx.work, move |_| document_text(f, &bytes)).await?, 1, Vec::new())
            }
            _ => (String::new(), 1, Vec::new()),
        };
        let needs_ocr = text.trim().is_empty();
        let text_sha256 = super::sha256_hex(text.as_bytes());
        let report = StageReport::new(u64::from(page_count), text.len() as u64);
        ctx.extraction = Some(ExtractionOutput {
            text_chars: text.chars().count(),
            text,
            page_count,
            needs_ocr,
            text_sha256,
            unreadable_pages,
        });
        Ok(report)
    }
}
