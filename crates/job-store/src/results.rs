//! Stage outputs: the result row and tickets of a job, written inside the
//! transaction that records the attempt, and the duplicate lookup the
//! criteria stage asks for.

use job_model::AttemptOutputs;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::StoreResult;

/// The stored result document of a job (the JSON the storage stage wrote).
pub async fn document_of(pool: &PgPool, job_id: Uuid) -> StoreResult<Option<serde_json::Value>> {
    Ok(sqlx::query_scalar!("SELECT result FROM document_results WHERE job_id = $1", job_id)
        .fetch_optional(pool)
        .await?)
}

/// An earlier job whose stored result has the same supplier and invoice
/// number (normalised keys).
pub async fn find_duplicate(
    pool: &PgPool,
    job_id: Uuid,
    supplier_key: &str,
    invoice_key: &str,
) -> StoreResult<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT job_id FROM document_results \
         WHERE supplier_key = $1 AND invoice_key = $2 AND job_id <> $3 \
         ORDER BY created_at, job_id LIMIT 1",
        supplier_key,
        invoice_key,
        job_id,
    )
    .fetch_optional(pool)
    .await?)
}

/// Writes an attempt's outputs in the caller's transaction (the one whose
/// lease-guarded UPDATE recorded the attempt). The result replaces an
/// earlier attempt's, never a later one's; tickets are kept once per
/// (job, rule), so a retried job finds its tickets in place.
pub(crate) async fn write(
    tx: &mut Transaction<'_, Postgres>,
    job_id: Uuid,
    attempt: i32,
    outputs: &AttemptOutputs,
) -> StoreResult<()> {
    if let Some(r) = &outputs.result {
        sqlx::query!(
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
                result_path = EXCLUDED.result_path, result = EXCLUDED.result, updated_at = now() \
             WHERE document_results.attempt <= EXCLUDED.attempt",
            job_id,
            r.document_id,
            attempt,
            r.document_type,
            r.classification_confidence,
            r.mime_type,
            r.sha256,
            r.text_sha256,
            r.page_count,
            r.needs_ocr,
            r.supplier,
            r.supplier_key,
            r.invoice_number,
            r.invoice_key,
            r.issue_date,
            r.due_date,
            r.total_cents,
            r.currency,
            r.findings,
            r.result_path,
            r.result,
        )
        .execute(&mut **tx)
        .await?;
    }
    if !outputs.tickets.is_empty() {
        let rules: Vec<String> = outputs.tickets.iter().map(|t| t.rule.clone()).collect();
        let severities: Vec<String> = outputs.tickets.iter().map(|t| t.severity.clone()).collect();
        let messages: Vec<String> = outputs.tickets.iter().map(|t| t.message.clone()).collect();
        sqlx::query!(
            "INSERT INTO tickets (job_id, attempt, rule, severity, message) \
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::text[]) \
             ON CONFLICT (job_id, rule) DO NOTHING",
            job_id,
            attempt,
            &rules,
            &severities,
            &messages,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
