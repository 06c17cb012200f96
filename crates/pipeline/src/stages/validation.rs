//! Stage 2: sniff the type from the content and reject what the pipeline
//! cannot or must not process. Every rejection here is permanent: the same
//! bytes fail the same way on every attempt.

use std::sync::Arc;

use async_trait::async_trait;

use super::names;
use crate::budget::WorkBudget;
use crate::context::StageContext;
use crate::document::structured_of;
use crate::einvoice::StructuredRead;
use crate::error::{StageError, kind};
use crate::pdf::{self, PdfProblem};
use crate::pipeline::{Stage, StageReport, blocking};
use crate::sniff::{DocumentFormat, Sniffed, as_text, sniff};

#[derive(Clone)]
pub struct ValidationOutput {
    pub format: DocumentFormat,
    pub mime_type: &'static str,
    /// Pages of a PDF; `None` for other formats.
    pub page_count: Option<u32>,
    /// The parsed PDF, kept so later stages do not parse it again.
    pub pdf: Option<Arc<lopdf::Document>>,
    /// The structured e-invoice the document carries (a bare UBL/CII file,
    /// or the XML embedded in a PDF), or why it cannot be used; `None` when
    /// there is none. Classification and analysis prefer it to the text.
    pub structured: Option<StructuredRead>,
}

impl std::fmt::Debug for ValidationOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationOutput")
            .field("format", &self.format)
            .field("mime_type", &self.mime_type)
            .field("page_count", &self.page_count)
            .field("structured", &self.structured.as_ref().map(|s| s.invoice.as_ref().map(|i| i.syntax)))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Validation;

/// Parses and checks PDF bytes off the async workers, under the job's
/// budget.
pub(crate) async fn load_pdf(work: &WorkBudget, bytes: bytes::Bytes) -> Result<Arc<lopdf::Document>, StageError> {
    match blocking(work, move |meter| pdf::load_metered(&bytes, meter)).await? {
        Ok(doc) => Ok(Arc::new(doc)),
        Err(PdfProblem::Encrypted) => {
            Err(StageError::permanent(kind::ENCRYPTED, "the PDF is encrypted (its trailer has an /Encrypt dictionary)"))
        }
        Err(PdfProblem::Broken(why)) => Err(StageError::permanent(kind::BROKEN_PDF, format!("unreadable PDF: {why}"))),
        Err(PdfProblem::Stopped(stopped)) => Err(stopped.into()),
    }
}

/// The parsed PDF of the context: validation's, or parsed again when a
/// custom validation stage did not keep it.
pub(crate) async fn pdf_of(ctx: &StageContext) -> Result<Arc<lopdf::Document>, StageError> {
    match ctx.validation_output()?.pdf.clone() {
        Some(doc) => Ok(doc),
        None => load_pdf(&ctx.work, ctx.upload_output()?.bytes.clone()).await,
    }
}

#[async_trait]
impl Stage for Validation {
    fn name(&self) -> &'static str {
        names::VALIDATION
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let upload = ctx.upload_output()?;
        let bytes = upload.bytes.clone();
        if bytes.is_empty() {
            return Err(StageError::permanent(kind::EMPTY, "the document is empty (0 bytes)"));
        }
        let max = ctx.config.max_document_bytes;
        if upload.size > max {
            return Err(StageError::permanent(
                kind::TOO_LARGE,
                format!("the document has {} bytes, the limit is {max}", upload.size),
            ));
        }
        let format = match sniff(&bytes) {
            Sniffed::Supported(format) => format,
            Sniffed::Unsupported { mime_type } => {
                return Err(StageError::permanent(
                    kind::UNSUPPORTED_TYPE,
                    format!("unsupported document type {mime_type}"),
                ));
            }
            Sniffed::Unknown => {
                return Err(StageError::permanent(kind::UNSUPPORTED_TYPE, "unrecognised binary data"));
            }
        };
        let (page_count, pdf) = match format {
            DocumentFormat::Pdf => {
                let doc = load_pdf(&ctx.work, bytes.clone()).await?;
                let pages = u32::try_from(doc.get_pages().len()).unwrap_or(u32::MAX);
                (Some(pages), Some(doc))
            }
            f if f.is_text() => {
                // A text file of blanks only is as empty as a 0-byte one.
                if as_text(&bytes).is_some_and(|t| t.trim().is_empty()) {
                    return Err(StageError::permanent(kind::EMPTY, "the document contains only whitespace"));
                }
                (None, None)
            }
            _ => (None, None),
        };
        // Reading the XML is checking the document too: a PDF/A-3 invoice's
        // attachment is part of what was sent.
        let structured = {
            let (bytes, doc) = (bytes.clone(), pdf.clone());
            blocking(&ctx.work, move |_| structured_of(format, &bytes, doc.as_deref())).await?
        };
        let size = upload.size;
        ctx.validation = Some(ValidationOutput { format, mime_type: format.mime_type(), page_count, pdf, structured });
        Ok(StageReport::new(u64::from(page_count.unwrap_or(1)), size))
    }
}
