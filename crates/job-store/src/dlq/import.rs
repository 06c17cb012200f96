//! Recording what arrives on `jobs.dlq`.

use crate::error::StoreResult;
use sqlx::PgPool;
use uuid::Uuid;

/// A poison message to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoison {
    pub reason: String,
    pub error_message: Option<String>,
    pub job_id: Option<Uuid>,
    pub document_id: Option<String>,
    pub source_queue: Option<String>,
    pub payload: Vec<u8>,
    pub headers: serde_json::Value,
    pub content_type: Option<String>,
    pub content_hash: Vec<u8>,
}

pub async fn job_status(pool: &PgPool, job_id: Uuid) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar!("SELECT status FROM jobs WHERE job_id = $1", job_id).fetch_optional(pool).await?)
}

/// Parks a job whose message the broker dead-lettered by itself (the
/// quorum queue's delivery limit) while the job waited for it, QUEUED or
/// RETRYING: nothing would ever deliver it again. The job moves to DLQ,
/// with its event, where an admin can retry it. False if the job had moved
/// on meanwhile (then the message is stale).
pub async fn park_lost_job(
    pool: &PgPool,
    job_id: Uuid,
    attempt: Option<i32>,
    reason: &str,
    error_message: &str,
    detail: serde_json::Value,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let parked = sqlx::query_scalar!(
        r#"WITH prev AS (SELECT job_id, status FROM jobs WHERE job_id = $1 FOR UPDATE)
           UPDATE jobs j SET status = 'DLQ', error_message = $2, error_stage = NULL, dlq_at = now(), updated_at = now(),
                  lease_owner = NULL, lease_expires_at = NULL
           FROM prev WHERE j.job_id = prev.job_id AND prev.status IN ('QUEUED', 'RETRYING')
           RETURNING prev.status AS "from_status!""#,
        job_id,
        error_message,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(from) = parked else {
        tx.rollback().await?;
        return Ok(false);
    };
    let from: job_model::JobStatus =
        from.parse().map_err(|e| crate::StoreError::invariant(format!("job {job_id}: {e}")))?;
    from.transition(job_model::JobStatus::Dlq)
        .map_err(|e| crate::StoreError::invariant(format!("job {job_id}: {e}")))?;
    crate::jobs::record_event(&mut tx, job_id, Some(from), job_model::JobStatus::Dlq, "dlq-admin:importer", detail)
        .await?;
    mark_seen(&mut *tx, job_id, attempt, Some(reason)).await?;
    tx.commit().await?;
    Ok(true)
}

/// Notes that a DLQ job's own message reached `jobs.dlq` (on a pool, or in
/// the caller's transaction).
pub async fn mark_seen(
    executor: impl sqlx::PgExecutor<'_>,
    job_id: Uuid,
    attempt: Option<i32>,
    reason: Option<&str>,
) -> StoreResult<()> {
    sqlx::query!(
        "INSERT INTO dlq_job_messages (job_id, attempt, reason) VALUES ($1, $2, $3) \
         ON CONFLICT (job_id) DO UPDATE SET attempt = EXCLUDED.attempt, reason = EXCLUDED.reason, seen_at = now()",
        job_id,
        attempt,
        reason,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Stores a poison message. With `redelivered`, an item with the same
/// content already stored is taken to be this very message, imported
/// before a crash kept its ack from reaching the broker: nothing is stored
/// twice. Returns the item's id and whether it was new.
pub async fn store_poison(pool: &PgPool, poison: &NewPoison, redelivered: bool) -> StoreResult<(Uuid, bool)> {
    let mut tx = pool.begin().await?;
    if redelivered {
        let existing = sqlx::query_scalar!(
            "SELECT item_id FROM dlq_poison WHERE content_hash = $1 ORDER BY item_id DESC LIMIT 1",
            poison.content_hash
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            tx.rollback().await?;
            return Ok((id, false));
        }
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO dlq_poison (item_id, reason, error_message, job_id, document_id, source_queue, payload, headers, \
                                 content_type, content_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id,
        poison.reason,
        poison.error_message,
        poison.job_id,
        poison.document_id,
        poison.source_queue,
        poison.payload,
        poison.headers,
        poison.content_type,
        poison.content_hash,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((id, true))
}
