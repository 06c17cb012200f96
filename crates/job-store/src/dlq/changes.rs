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
use super::{filtered, sources_of};
use crate::row::{JobRow, query_jobs};
use std::collections::HashMap;

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
    let sources = sources_of(to);
    // Lock the batch and keep what it looked like, then move it: the rows
    // stay locked by this transaction in between, so the UPDATE's status
    // check only restates what the lock already holds.
    let before = filtered!(
        query;
        "SELECT j.job_id, j.status, j.retry_count, j.error_message, j.error_stage, j.dlq_at \
         FROM (SELECT id, dlq_at FROM dlq_job_items \
               WHERE status = ANY($10) AND ($11::uuid[] IS NULL OR id = ANY($11)) AND",
        ") i JOIN jobs j ON j.job_id = i.id \
         WHERE j.status = ANY($10) \
         ORDER BY i.dlq_at, j.job_id LIMIT $12 \
         FOR UPDATE OF j SKIP LOCKED";
        filter,
        &sources as &[&str],
        ids,
        limit
    )
    .fetch_all(&mut **tx)
    .await?;
    if before.is_empty() {
        return Ok(Vec::new());
    }
    let locked: Vec<Uuid> = before.iter().map(|r| r.job_id).collect();
    let moved = query_jobs!(
        "UPDATE jobs SET status = $1, \
             retry_count = CASE WHEN $1 = 'QUEUED' THEN 0 ELSE retry_count END, \
             crash_count = CASE WHEN $1 = 'QUEUED' THEN 0 ELSE crash_count END, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
         WHERE job_id = ANY($2) AND status = ANY($3) RETURNING ",
        "",
        to.as_str(),
        &locked,
        &sources as &[&str]
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut moved: HashMap<Uuid, JobRow> = moved.into_iter().map(|row| (row.job_id, row)).collect();
    before
        .into_iter()
        .filter_map(|b| moved.remove(&b.job_id).map(|row| (b, row)))
        .map(|(b, row)| {
            Ok(ChangedJob {
                job: crate::row::job(row)?,
                from_status: b.status,
                previous_retry_count: b.retry_count,
                previous_error_message: b.error_message,
                previous_error_stage: b.error_stage,
                previous_dlq_at: b.dlq_at,
            })
        })
        .collect()
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

/// Deletes up to `limit` poison items matching `filter` (a bulk delete of a
/// group or a filter), oldest first, skipping rows another transaction holds.
pub async fn delete_poison_matching(
    tx: &mut Transaction<'_, Postgres>,
    filter: &DlqFilter,
    limit: i64,
) -> StoreResult<Vec<Uuid>> {
    Ok(filtered!(
        query_scalar;
        "WITH candidates AS ( \
             SELECT p.item_id FROM dlq_poison p \
             WHERE p.status = 'DLQ' AND p.item_id IN (SELECT id FROM dlq_poison_items WHERE",
        ") ORDER BY p.dlq_at, p.item_id LIMIT $10 \
             FOR UPDATE OF p SKIP LOCKED \
         ) \
         UPDATE dlq_poison p SET status = 'DELETED', deleted_at = now() \
         FROM candidates c WHERE p.item_id = c.item_id AND p.status = 'DLQ' \
         RETURNING p.item_id AS \"item_id!\"";
        filter,
        limit
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// How many poison items in the DLQ match `filter` now (a bulk delete's
/// dry run).
pub async fn count_poison_matching(pool: &sqlx::PgPool, filter: &DlqFilter) -> StoreResult<i64> {
    Ok(filtered!(
        query_scalar;
        "SELECT count(*) AS \"count!\" FROM dlq_poison_items WHERE status = 'DLQ' AND",
        "";
        filter
    )
    .fetch_one(pool)
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
    let counted = filtered!(
        query;
        "WITH matched AS ( \
             SELECT id AS job_id, dlq_at FROM dlq_job_items \
             WHERE status = $10 AND ($11::uuid[] IS NULL OR id = ANY($11)) AND",
        "    ORDER BY dlq_at, id LIMIT $12 \
         ) \
         SELECT (SELECT count(*) FROM matched) AS \"count!\", \
                coalesce((SELECT array_agg(job_id ORDER BY dlq_at, job_id) \
                          FROM (SELECT * FROM matched ORDER BY dlq_at, job_id LIMIT 20) s), '{}') AS \"first!: Vec<Uuid>\"";
        filter,
        from.as_str(),
        ids,
        limit
    )
    .fetch_one(pool)
    .await?;
    Ok((counted.count, counted.first))
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
