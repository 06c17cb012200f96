//! The document stages (validation → classification → extraction →
//! analysis) as one synchronous function over bytes: what the stages do,
//! without a context, a database or a blob store. The evaluation harness
//! and the `inspect` example run documents through it; the stages call the
//! same functions one by one (`structured_of`, `classify_document`,
//! `fields_of`).

use serde::Serialize;

use crate::budget::{Stopped, WorkBudget};
use crate::classify::{Classification, DocumentType, classify};
use crate::einvoice::{self, StructuredRead};
use crate::fields::{InvoiceFields, Source, extract_fields};
use crate::layout::PdfPages;
use crate::pdf::{self, PdfProblem};
use crate::sniff::{DocumentFormat, Sniffed, sniff};

/// How to read a document.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyseOptions {
    /// Read the visible text only, as if the document had no structured
    /// e-invoice XML (the harness scores the text extractor this way).
    pub ignore_structured: bool,
    /// How PDF text is read (the harness compares engines).
    pub text_engine: pdf::TextEngine,
}

/// What the document stages find.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentAnalysis {
    pub format: DocumentFormat,
    pub page_count: u32,
    pub classification: Classification,
    pub text: String,
    pub fields: InvoiceFields,
}

impl DocumentAnalysis {
    /// Nothing found: what a rejected document amounts to.
    pub fn empty(format: DocumentFormat) -> Self {
        DocumentAnalysis {
            format,
            page_count: 0,
            classification: Classification { document_type: DocumentType::Other, confidence: 0.0, matched: Vec::new() },
            text: String::new(),
            fields: InvoiceFields::default(),
        }
    }
}

/// Why a document is rejected (validation's permanent failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The structured e-invoice a document carries (validation's look).
pub fn structured_of(format: DocumentFormat, bytes: &[u8], pdf: Option<&lopdf::Document>) -> Option<StructuredRead> {
    match (format, pdf) {
        (DocumentFormat::Pdf, Some(doc)) => einvoice::from_pdf(doc),
        (DocumentFormat::Xml, _) => einvoice::from_xml(bytes),
        _ => None,
    }
}

/// Classification: BT-3 of a readable e-invoice, else keywords over the
/// file name and the first text.
pub fn classify_document(
    filename: &str,
    format: DocumentFormat,
    peek: &str,
    structured: Option<&StructuredRead>,
) -> Classification {
    match structured.map(|s| &s.invoice) {
        Some(Ok(inv)) => Classification {
            document_type: inv.document_type(),
            confidence: 1.0,
            matched: vec![match &inv.type_code {
                Some(code) => format!("BT-3 {code}"),
                None => "BT-3 (UBL root)".to_owned(),
            }],
        },
        _ => classify(filename, format, peek),
    }
}

/// Analysis: the exact fields of a readable e-invoice; else fields from the
/// text, with the reason the XML was not used.
pub fn fields_of(format: DocumentFormat, text: &str, structured: Option<&StructuredRead>) -> InvoiceFields {
    let text_source = if format == DocumentFormat::Pdf { Source::PdfText } else { Source::Text };
    if let Some(StructuredRead { attachment, invoice: Ok(inv) }) = structured {
        let mut fields = InvoiceFields::from_einvoice(inv, attachment.clone());
        if !inv.missing.is_empty() {
            // What the XML lacks, the visible text may show.
            let mut guessed = extract_fields(text);
            guessed.set_text_source(text_source);
            fields.fill_missing_mandatory(guessed);
            fields.structured_error = Some(format!(
                "incomplete EN 16931 invoice: {} missing from the XML, read from the visible text",
                inv.missing.join(", ")
            ));
        }
        return fields;
    }
    let mut fields = extract_fields(text);
    fields.set_text_source(text_source);
    fields.structured_error = structured.and_then(|s| s.invoice.as_ref().err().cloned());
    fields
}

/// Runs the document stages over `bytes`.
pub fn analyse(filename: &str, bytes: &[u8], options: &AnalyseOptions) -> Result<DocumentAnalysis, Rejected> {
    if bytes.is_empty() {
        return Err(Rejected("empty".into()));
    }
    let format = match sniff(bytes) {
        Sniffed::Supported(f) => f,
        other => return Err(Rejected(format!("unsupported: {other:?}"))),
    };
    let budget = WorkBudget::new(crate::limits::DOCUMENT_CPU_TIME);
    let meter = budget.meter();
    let too_complex = |s: Stopped| Rejected(format!("{}: {s}", crate::error::kind::DOCUMENT_TOO_COMPLEX));
    let doc = match format {
        DocumentFormat::Pdf => Some(pdf::load_metered(bytes, &meter).map_err(|p| match p {
            PdfProblem::Encrypted => Rejected("encrypted".into()),
            PdfProblem::Broken(why) => Rejected(format!("broken_pdf: {why}")),
            PdfProblem::Stopped(s) => too_complex(s),
        })?),
        _ => None,
    };
    let structured = if options.ignore_structured { None } else { structured_of(format, bytes, doc.as_ref()) };
    let (peek, text, page_count) = match (&doc, format) {
        (Some(doc), _) if options.text_engine == pdf::TextEngine::Layout => {
            // Classification peeks at the first page, as its stage does;
            // extraction goes on from there.
            let mut pages = PdfPages::new(doc);
            pages.read(doc, Some(1), &meter).map_err(too_complex)?;
            let first = pages.text().text;
            pages.read(doc, None, &meter).map_err(too_complex)?;
            let out = pages.text();
            (first, out.text, out.pages)
        }
        (Some(doc), _) => {
            let out = pdf::extract_text_stream_order(doc, None);
            let first = pdf::extract_text_stream_order(doc, Some(1)).text;
            (first, out.text, out.pages)
        }
        (None, f) if f.is_text() => {
            let text = crate::stages::extraction::document_text(f, bytes);
            (text.clone(), text, 1)
        }
        _ => (String::new(), String::new(), 1),
    };
    let classification = classify_document(filename, format, &peek, structured.as_ref());
    let fields = fields_of(format, &text, structured.as_ref());
    Ok(DocumentAnalysis { format, page_count, classification, text, fields })
}
