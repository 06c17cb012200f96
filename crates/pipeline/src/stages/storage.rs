//! Stage 8: the result document, as JSON in the blob store
//! (`{results_prefix}/{job_id}.json`, replacing an earlier attempt's), and
//! as the row for `document_results`, an output the worker commits with the
//! attempt's outcome. The blob is written first: a row never points at a
//! missing blob.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_model::ResultRecord;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::names;
use crate::blob::{parse_path, store_error};
use crate::classify::DocumentType;
use crate::context::StageContext;
use crate::error::{StageError, kind};
use crate::fields::{InvoiceFields, invoice_key, supplier_key};
use crate::pipeline::{Stage, StageReport};
use crate::rules::Finding;
use crate::sniff::DocumentFormat;

/// Version of the result document layout; bumped on incompatible changes.
pub const RESULT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultClassification {
    pub document_type: DocumentType,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultText {
    pub sha256: String,
    pub chars: usize,
    pub needs_ocr: bool,
    pub unreadable_pages: Vec<u32>,
}

/// What the pipeline found in a document: the JSON stored in the blob store
/// and in `document_results.result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultDocument {
    pub schema_version: u32,
    pub job_id: Uuid,
    pub document_id: String,
    pub filename: String,
    pub attempt: i32,
    pub processed_at: DateTime<Utc>,
    pub size_bytes: u64,
    pub sha256: String,
    pub format: DocumentFormat,
    pub mime_type: String,
    pub page_count: u32,
    pub classification: ResultClassification,
    pub fields: InvoiceFields,
    pub findings: Vec<Finding>,
    pub text: ResultText,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageOutput {
    /// Blob path of the result JSON.
    pub result_path: String,
    pub json_bytes: u64,
    /// The `document_results` row.
    pub record: ResultRecord,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Storage;

/// Builds the result document from the outputs in the context.
pub fn result_document(ctx: &StageContext) -> Result<ResultDocument, StageError> {
    let upload = ctx.upload_output()?;
    let validation = ctx.validation_output()?;
    let classification = ctx.classification_output()?;
    let extraction = ctx.extraction_output()?;
    let analysis = ctx.analysis_output()?;
    let criteria = ctx.criteria_output()?;
    Ok(ResultDocument {
        schema_version: RESULT_SCHEMA_VERSION,
        job_id: ctx.document.job_id,
        document_id: ctx.document.document_id.clone(),
        filename: ctx.document.filename.clone(),
        attempt: ctx.document.attempt,
        processed_at: Utc::now(),
        size_bytes: upload.size,
        sha256: upload.sha256.clone(),
        format: validation.format,
        mime_type: validation.mime_type.to_owned(),
        page_count: extraction.page_count,
        classification: ResultClassification {
            document_type: classification.document_type,
            confidence: classification.confidence,
        },
        fields: analysis.fields.clone(),
        findings: criteria.findings.clone(),
        text: ResultText {
            sha256: extraction.text_sha256.clone(),
            chars: extraction.text_chars,
            needs_ocr: extraction.needs_ocr,
            unreadable_pages: extraction.unreadable_pages.clone(),
        },
    })
}

#[async_trait]
impl Stage for Storage {
    fn name(&self) -> &'static str {
        names::STORAGE
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let doc = result_document(ctx)?;
        let json = serde_json::to_vec_pretty(&doc)
            .map_err(|e| StageError::permanent(kind::INTERNAL, format!("serialise result: {e}")))?;
        let value = serde_json::to_value(&doc)
            .map_err(|e| StageError::permanent(kind::INTERNAL, format!("serialise result: {e}")))?;
        let prefix = ctx.config.results_prefix.trim_end_matches('/');
        let result_path = format!("{prefix}/{}.json", ctx.document.job_id);
        let location = parse_path(&result_path)?;
        let json_bytes = json.len() as u64;
        ctx.blobs.put(&location, PutPayload::from(json)).await.map_err(|e| store_error("write result", e))?;

        let f = &doc.fields;
        let supplier = f.supplier.as_ref().map(|s| s.value.clone());
        let invoice_number = f.invoice_number.as_ref().map(|n| n.value.clone());
        let record = ResultRecord {
            document_id: doc.document_id.clone(),
            document_type: doc.classification.document_type.as_str().to_owned(),
            classification_confidence: doc.classification.confidence,
            mime_type: doc.mime_type.clone(),
            sha256: doc.sha256.clone(),
            text_sha256: doc.text.sha256.clone(),
            page_count: i32::try_from(doc.page_count).unwrap_or(i32::MAX),
            needs_ocr: doc.text.needs_ocr,
            supplier_key: supplier.as_deref().map(supplier_key).filter(|k| !k.is_empty()),
            invoice_key: invoice_number.as_deref().map(invoice_key).filter(|k| !k.is_empty()),
            supplier,
            invoice_number,
            issue_date: f.issue_date.as_ref().map(|d| d.value),
            due_date: f.due_date.as_ref().map(|d| d.value),
            total_cents: f.total_amount.as_ref().map(|t| t.value.cents()),
            currency: f.currency.as_ref().map(|c| c.value.clone()),
            findings: i32::try_from(doc.findings.len()).unwrap_or(i32::MAX),
            result_path: result_path.clone(),
            result: value,
        };
        ctx.storage = Some(StorageOutput { result_path, json_bytes, record });
        Ok(StageReport::new(1, json_bytes))
    }
}
