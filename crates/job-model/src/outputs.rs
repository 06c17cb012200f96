//! What an attempt's stages produced for Postgres: the result row and the
//! tickets. The pipeline builds them, the worker hands them to the store,
//! which commits them in the same transaction as the attempt's outcome,
//! under the same lease and attempt check (DESIGN.md, "Delivery
//! guarantees").

use chrono::NaiveDate;

/// A finding that asks for a person: at most one ticket per (job, rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDraft {
    pub rule: String,
    pub severity: String,
    pub message: String,
}

/// A job's row in `document_results`; `result` is the full result document
/// (the same JSON as the blob at `result_path`), the other fields are the
/// parts queried directly.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    pub document_id: String,
    pub document_type: String,
    pub classification_confidence: f64,
    pub mime_type: String,
    pub sha256: String,
    pub text_sha256: String,
    pub page_count: i32,
    pub needs_ocr: bool,
    pub supplier: Option<String>,
    /// Normalised supplier name (lower case, no legal form), for the duplicate rule.
    pub supplier_key: Option<String>,
    pub invoice_number: Option<String>,
    /// Normalised invoice number (alphanumerics, upper case).
    pub invoice_key: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub total_cents: Option<i64>,
    pub currency: Option<String>,
    pub findings: i32,
    pub result_path: String,
    pub result: serde_json::Value,
}

/// Everything an attempt's stages ask Postgres to keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptOutputs {
    /// Set when the storage stage ran.
    pub result: Option<ResultRecord>,
    pub tickets: Vec<TicketDraft>,
}
