//! Counts over the `jobs` table for reports, alerts and autoscaling.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::error::StoreResult;

/// Jobs per (priority, status), over the whole table.
pub async fn status_counts(pool: &PgPool) -> StoreResult<Vec<(i16, String, i64)>> {
    let rows = sqlx::query!(r#"SELECT priority, status, count(*) AS "count!" FROM jobs GROUP BY priority, status"#)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.priority, r.status, r.count)).collect())
}

/// Jobs QUEUED or in the DLQ per (status, priority): a read of the
/// (status, job_id) index limited to those two statuses.
pub async fn queued_and_dlq(pool: &PgPool) -> StoreResult<Vec<(String, i16, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, priority, count(*) AS "count!" FROM jobs WHERE status IN ('QUEUED', 'DLQ')
           GROUP BY status, priority"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.priority, r.count)).collect())
}

/// Jobs QUEUED or PROCESSING per (status, priority): the work on the job
/// queues, waiting or running, that the worker autoscaler spreads over the
/// workers. Read from the (status, job_id) index, those two statuses only.
pub async fn queued_and_processing(pool: &PgPool) -> StoreResult<Vec<(String, i16, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, priority, count(*) AS "count!" FROM jobs WHERE status IN ('QUEUED', 'PROCESSING')
           GROUP BY status, priority"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.priority, r.count)).collect())
}

/// QUEUED jobs and the oldest one's wait in seconds, per priority. Served by
/// `jobs_status_job_id_idx`: only QUEUED rows are read. A job's `updated_at`
/// is when it last entered QUEUED (submission, retry by an admin, rescue
/// after a crash).
pub async fn queued_now(pool: &PgPool) -> StoreResult<BTreeMap<i16, (i64, Option<f64>)>> {
    let rows = sqlx::query!(
        r#"SELECT priority, count(*) AS "count!", EXTRACT(EPOCH FROM now() - min(updated_at))::float8 AS oldest_seconds
           FROM jobs WHERE status = 'QUEUED' GROUP BY priority"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.priority, (r.count, r.oldest_seconds))).collect())
}
