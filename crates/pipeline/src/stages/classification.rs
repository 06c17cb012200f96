//! Stage 3: document type from the file name, the format and a peek at the
//! first text. The peek is cheap on purpose (the first page of a PDF, the
//! first characters of a text): extraction, which runs next, reads it all,
//! going on from the page laid out here (`StageContext::pdf_pages`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::names;
use crate::classify::DocumentType;
use crate::context::StageContext;
use crate::document::classify_document;
use crate::error::StageError;
use crate::pipeline::{Stage, StageReport};
use crate::sniff::DocumentFormat;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationOutput {
    pub document_type: DocumentType,
    pub confidence: f64,
    /// Phrases that decided the type.
    pub matched: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Classification;

/// At most `max` characters of `s`, cut at a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

#[async_trait]
impl Stage for Classification {
    fn name(&self) -> &'static str {
        names::CLASSIFICATION
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let validation = ctx.validation_output()?;
        let format = validation.format;
        let limit = ctx.config.classification_peek_chars;
        let peek = match format {
            DocumentFormat::Pdf => {
                let pages = super::extraction::read_pdf_pages(ctx, Some(1)).await?;
                pages.text_up_to(Some(1)).text
            }
            f if f.is_text() => {
                // Only the head is needed; converting a prefix of the bytes
                // keeps this cheap for large CSV exports.
                let bytes = &ctx.upload_output()?.bytes;
                let head = &bytes[..bytes.len().min(limit.saturating_mul(4))];
                super::extraction::document_text(f, head)
            }
            _ => String::new(),
        };
        let peek = prefix(&peek, limit);
        let c = classify_document(&ctx.document.filename, format, peek, ctx.validation_output()?.structured.as_ref());
        let report = StageReport {
            items_processed: 1,
            bytes_processed: peek.len() as u64,
            document_type: Some(c.document_type.as_str().to_owned()),
        };
        ctx.classification =
            Some(ClassificationOutput { document_type: c.document_type, confidence: c.confidence, matched: c.matched });
        Ok(report)
    }
}
