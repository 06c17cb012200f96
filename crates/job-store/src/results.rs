//! Stage outputs read back: a job's stored result document, and the
//! duplicate lookup the criteria stage asks for. They are written with the
//! attempt that produced them (`lifecycle::record_attempts`).

use sqlx::{PgExecutor, PgPool};
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
    db: impl PgExecutor<'_>,
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
    .fetch_optional(db)
    .await?)
}
