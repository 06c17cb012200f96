//! Status changes of DLQ items. A batch is chosen with `FOR UPDATE SKIP
//! LOCKED` and changed by a conditional UPDATE in the same statement, so two
//! processes working through the same selection at once never take the same
//! row: each item changes exactly once, by whoever locked it first.

use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use job_model::{JobMetadata, JobStatus};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::DlqFilter;
use super::{JOB_DLQ_AT, LAST_DLQ_EVENT, bind_filter, job_filter_sql, sources_of};
use crate::row::JobRow;

/// A job moved by a batch, with what it looked like before.
#[derive(Debug, Clone)]
pub struct ChangedJob {
    pub job: JobMetadata,
    pub from_status: String,
    pub previous_retry_count: i32,
    pub previous_error_message: Option<String>,
    pub previous_error_stage: Option<String>,
    pub previous_dlq_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ChangedRow {
    #[sqlx(flatten)]
    job: JobRow,
    from_status: String,
    previous_retry_count: i32,
    previous_error_message: Option<String>,
    previous_error_stage: Option<String>,
    previous_dlq_at: Option<DateTime<Utc>>,
}

impl TryFrom<ChangedRow> for ChangedJob {
    type Error = StoreError;

    fn try_from(r: ChangedRow) -> StoreResult<ChangedJob> {
        Ok(ChangedJob {
            job: crate::row::job(r.job)?,
            from_status: r.from_status,
            previous_retry_count: r.previous_retry_count,
            previous_error_message: r.previous_error_message,
            previous_error_stage: r.previous_error_stage,
            previous_dlq_at: r.previous_dlq_at,
        })
    }
}

impl ChangedJob {
    /// The move this row made, checked against the status machine.
    pub fn transition(&self, to: JobStatus) -> StoreResult<JobStatus> {
        let from: JobStatus = self.from_status.parse().map_err(|e| StoreError::invariant(format!("{e}")))?;
        from.transition(to).map_err(|e| StoreError::invariant(e.to_string()))?;
        Ok(from)
    }
}

/// Moves up to `limit` jobs matching `filter` (and `ids`, when given) from
/// a status that may reach `to` into `to`, oldest DLQ entries first, skipping
/// rows another transaction holds. A move to QUEUED is a fresh start: retry
/// and crash counts back to 0 (a job quarantined for crashing its workers
/// would otherwise go straight back to the DLQ); `attempt` keeps counting.
pub async fn move_jobs(
    tx: &mut Transaction<'_, Postgres>,
    to: JobStatus,
    filter: &DlqFilter,
    ids: Option<&[Uuid]>,
    limit: i64,
) -> StoreResult<Vec<ChangedJob>> {
    let sql = format!(
        "WITH candidates AS ( \
             SELECT j.job_id, j.status, j.retry_count, j.error_message, j.error_stage, j.dlq_at \
             FROM jobs j {LAST_DLQ_EVENT} \
             WHERE j.status = ANY($10) AND ($11::uuid[] IS NULL OR j.job_id = ANY($11)) AND {filter} \
             ORDER BY {JOB_DLQ_AT}, j.job_id \
             LIMIT $12 \
             FOR UPDATE OF j SKIP LOCKED \
         ) \
         UPDATE jobs j SET status = $13::text, \
             retry_count = CASE WHEN $13::text = 'QUEUED' THEN 0 ELSE j.retry_count END, \
             crash_count = CASE WHEN $13::text = 'QUEUED' THEN 0 ELSE j.crash_count END, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
         FROM candidates c \
         WHERE j.job_id = c.job_id AND j.status = ANY($10) \
         RETURNING j.*, c.status AS from_status, c.retry_count AS previous_retry_count, \
                   c.error_message AS previous_error_message, c.error_stage AS previous_error_stage, \
                   c.dlq_at AS previous_dlq_at",
        filter = job_filter_sql(),
    );
    let rows = bind_filter(sqlx::query_as::<_, ChangedRow>(sqlx::AssertSqlSafe(sql)), filter)
        .bind(sources_of(to))
        .bind(ids.map(<[Uuid]>::to_vec))
        .bind(limit)
        .bind(to.as_str())
        .fetch_all(&mut **tx)
        .await?;
    rows.into_iter().map(ChangedJob::try_from).collect()
}

/// Locks one job row (waiting for whoever holds it) and returns its status.
pub async fn lock_job(tx: &mut Transaction<'_, Postgres>, job_id: Uuid) -> StoreResult<Option<JobStatus>> {
    let status = sqlx::query_scalar!("SELECT status FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        .fetch_optional(&mut **tx)
        .await?;
    status.map(|s| s.parse().map_err(|e| StoreError::invariant(format!("{e}")))).transpose()
}

/// Locks one poison item and returns its status.
pub async fn lock_poison(tx: &mut Transaction<'_, Postgres>, item_id: Uuid) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar!("SELECT status FROM dlq_poison WHERE item_id = $1 FOR UPDATE", item_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Deletes live poison items: the ones in `ids`, or up to `limit` of those
/// dead-lettered before `before`, skipping rows another transaction holds.
pub async fn delete_poison(
    tx: &mut Transaction<'_, Postgres>,
    ids: Option<&[Uuid]>,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> StoreResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar!(
        "WITH candidates AS ( \
             SELECT item_id FROM dlq_poison \
             WHERE status = 'DLQ' AND ($1::uuid[] IS NULL OR item_id = ANY($1)) \
               AND ($2::timestamptz IS NULL OR dlq_at < $2) \
             ORDER BY dlq_at, item_id LIMIT $3 \
             FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE dlq_poison p SET status = 'DELETED', deleted_at = now() \
         FROM candidates c WHERE p.item_id = c.item_id AND p.status = 'DLQ' \
         RETURNING p.item_id",
        ids,
        before,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// How many jobs a bulk retry would take now (without locking), and the
/// first few of them.
pub async fn count_jobs(
    pool: &sqlx::PgPool,
    from: JobStatus,
    filter: &DlqFilter,
    ids: Option<&[Uuid]>,
    limit: i64,
) -> StoreResult<(i64, Vec<Uuid>)> {
    let sql = format!(
        "WITH matched AS ( \
             SELECT j.job_id, {JOB_DLQ_AT} AS dlq_at FROM jobs j {LAST_DLQ_EVENT} \
             WHERE j.status = $10 AND ($11::uuid[] IS NULL OR j.job_id = ANY($11)) AND {filter} \
             ORDER BY {JOB_DLQ_AT}, j.job_id LIMIT $12 \
         ) \
         SELECT (SELECT count(*) FROM matched), \
                coalesce((SELECT array_agg(job_id ORDER BY dlq_at, job_id) FROM (SELECT * FROM matched ORDER BY dlq_at, job_id LIMIT 20) s), '{{}}')",
        filter = job_filter_sql(),
    );
    Ok(bind_filter(sqlx::query_as::<_, (i64, Vec<Uuid>)>(sqlx::AssertSqlSafe(sql)), filter)
        .bind(from.as_str())
        .bind(ids.map(<[Uuid]>::to_vec))
        .bind(limit)
        .fetch_one(pool)
        .await?)
}

/// Live poison items dead-lettered before `before`.
pub async fn count_poison_before(pool: &sqlx::PgPool, before: DateTime<Utc>) -> StoreResult<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM dlq_poison WHERE status = 'DLQ' AND dlq_at < $1"#,
        before
    )
    .fetch_one(pool)
    .await?)
}
