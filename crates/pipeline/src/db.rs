//! Postgres access for the stages: result rows, tickets, and the duplicate
//! lookup. Queries are plain SQL strings (no compile-time checking: the
//! crate builds without a database), against the tables of
//! `migrations/20261129000002_pipeline.sql`.

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{StageError, kind};

/// Maps a database error to a stage error. Connection trouble is retryable
/// (DESIGN.md: Postgres down is a retry, not a failed document); a
/// constraint violation will fail again the same way, so it is permanent.
pub(crate) fn db_error(context: &str, e: sqlx::Error) -> StageError {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if code.starts_with("23") {
                StageError::permanent(kind::DATABASE_CONSTRAINT, format!("{context}: {e}"))
            } else if code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code.starts_with("40")
            {
                // Connection, resources, operator intervention, transaction rollback.
                StageError::retryable(kind::DATABASE_UNAVAILABLE, format!("{context}: {e}"))
            } else {
                StageError::retryable(kind::DATABASE_ERROR, format!("{context}: {e}"))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StageError::retryable(kind::DATABASE_UNAVAILABLE, format!("{context}: {e}")),
        _ => StageError::retryable(kind::DATABASE_ERROR, format!("{context}: {e}")),
    }
}

/// An earlier job whose stored result has the same supplier and invoice
/// number (normalised keys).
pub(crate) async fn find_duplicate(
    pool: &PgPool,
    job_id: Uuid,
    supplier_key: &str,
    invoice_key: &str,
) -> Result<Option<Uuid>, StageError> {
    sqlx::query_scalar::<_, Uuid>(
        "SELECT job_id FROM document_results \
         WHERE supplier_key = $1 AND invoice_key = $2 AND job_id <> $3 \
         ORDER BY created_at, job_id LIMIT 1",
    )
    .bind(supplier_key)
    .bind(invoice_key)
    .bind(job_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("duplicate lookup", e))
}

pub(crate) struct NewTicket<'a> {
    pub job_id: Uuid,
    pub attempt: i32,
    pub rule: &'a str,
    pub severity: &'a str,
    pub message: &'a str,
}

/// Inserts a ticket unless one exists for (job, rule). Returns whether a
/// row was created: a retried job finds its tickets already there.
pub(crate) async fn insert_ticket(pool: &PgPool, t: &NewTicket<'_>) -> Result<bool, StageError> {
    let result = sqlx::query(
        "INSERT INTO tickets (job_id, attempt, rule, severity, message) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (job_id, rule) DO NOTHING",
    )
    .bind(t.job_id)
    .bind(t.attempt)
    .bind(t.rule)
    .bind(t.severity)
    .bind(t.message)
    .execute(pool)
    .await
    .map_err(|e| db_error("insert ticket", e))?;
    Ok(result.rows_affected() == 1)
}

/// The columns of `document_results`; the full result is in `result`.
pub(crate) struct ResultRow<'a> {
    pub job_id: Uuid,
    pub document_id: &'a str,
    pub attempt: i32,
    pub document_type: &'a str,
    pub classification_confidence: f64,
    pub mime_type: &'a str,
    pub sha256: &'a str,
    pub text_sha256: &'a str,
    pub page_count: i32,
    pub needs_ocr: bool,
    pub supplier: Option<&'a str>,
    pub supplier_key: Option<&'a str>,
    pub invoice_number: Option<&'a str>,
    pub invoice_key: Option<&'a str>,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub total_cents: Option<i64>,
    pub currency: Option<&'a str>,
    pub findings: i32,
    pub result_path: &'a str,
    pub result: &'a serde_json::Value,
}

/// Writes the result row, replacing the one of an earlier attempt.
pub(crate) async fn upsert_result(pool: &PgPool, r: &ResultRow<'_>) -> Result<(), StageError> {
    sqlx::query(
        "INSERT INTO document_results (job_id, document_id, attempt, document_type, classification_confidence, \
            mime_type, sha256, text_sha256, page_count, needs_ocr, supplier, supplier_key, invoice_number, \
            invoice_key, issue_date, due_date, total_cents, currency, findings, result_path, result) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
         ON CONFLICT (job_id) DO UPDATE SET \
            document_id = EXCLUDED.document_id, attempt = EXCLUDED.attempt, \
            document_type = EXCLUDED.document_type, \
            classification_confidence = EXCLUDED.classification_confidence, \
            mime_type = EXCLUDED.mime_type, sha256 = EXCLUDED.sha256, text_sha256 = EXCLUDED.text_sha256, \
            page_count = EXCLUDED.page_count, needs_ocr = EXCLUDED.needs_ocr, supplier = EXCLUDED.supplier, \
            supplier_key = EXCLUDED.supplier_key, invoice_number = EXCLUDED.invoice_number, \
            invoice_key = EXCLUDED.invoice_key, issue_date = EXCLUDED.issue_date, due_date = EXCLUDED.due_date, \
            total_cents = EXCLUDED.total_cents, currency = EXCLUDED.currency, findings = EXCLUDED.findings, \
            result_path = EXCLUDED.result_path, result = EXCLUDED.result, updated_at = now()",
    )
    .bind(r.job_id)
    .bind(r.document_id)
    .bind(r.attempt)
    .bind(r.document_type)
    .bind(r.classification_confidence)
    .bind(r.mime_type)
    .bind(r.sha256)
    .bind(r.text_sha256)
    .bind(r.page_count)
    .bind(r.needs_ocr)
    .bind(r.supplier)
    .bind(r.supplier_key)
    .bind(r.invoice_number)
    .bind(r.invoice_key)
    .bind(r.issue_date)
    .bind(r.due_date)
    .bind(r.total_cents)
    .bind(r.currency)
    .bind(r.findings)
    .bind(r.result_path)
    .bind(sqlx::types::Json(r.result))
    .execute(pool)
    .await
    .map_err(|e| db_error("store result", e))?;
    Ok(())
}
