//! The retention sweep: raw traces older than RAW_RETENTION_HOURS and
//! rollups older than ROLLUP_RETENTION_DAYS are deleted in bounded batches
//! (one short statement each), so the sweep never holds many locks or writes
//! a burst of WAL. Reports keep working from the rollups after the raw rows
//! are gone.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::RetentionArgs;
use crate::metrics::{TableLabels, TrackerMetrics};

/// Rows removed by one sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Attempts (their stage timings, an array in the same row, go with them).
    pub executions: u64,
    pub stage_rollups: u64,
    pub execution_rollups: u64,
}

async fn delete_in_batches(
    pool: &PgPool,
    sql: &'static str,
    cutoff_hours: i32,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(sql).bind(cutoff_hours).bind(batch).execute(pool).await?.rows_affected();
        total += deleted;
        if deleted < batch as u64 {
            return Ok(total);
        }
    }
}

/// One pass over the three tables.
pub async fn sweep(pool: &PgPool, args: &RetentionArgs) -> Result<Swept, sqlx::Error> {
    let raw_hours = i32::try_from(args.raw_retention_hours).unwrap_or(i32::MAX);
    let rollup_hours = i32::try_from(args.rollup_retention_days.saturating_mul(24)).unwrap_or(i32::MAX);
    let batch = args.retention_batch_size;
    // Oldest first through metric_executions_finished_idx.
    let executions = delete_in_batches(
        pool,
        "DELETE FROM metric_executions WHERE (job_id, attempt) IN ( \
             SELECT job_id, attempt FROM metric_executions \
             WHERE finished_at < now() - make_interval(hours => $1::int) \
             ORDER BY finished_at LIMIT $2)",
        raw_hours,
        batch,
    )
    .await?;
    let stage_rollups = delete_in_batches(
        pool,
        "DELETE FROM metric_stage_rollups WHERE (bucket, stage) IN ( \
             SELECT bucket, stage FROM metric_stage_rollups \
             WHERE bucket < now() - make_interval(hours => $1::int) ORDER BY bucket LIMIT $2)",
        rollup_hours,
        batch,
    )
    .await?;
    let execution_rollups = delete_in_batches(
        pool,
        "DELETE FROM metric_execution_rollups WHERE (bucket, priority, outcome) IN ( \
             SELECT bucket, priority, outcome FROM metric_execution_rollups \
             WHERE bucket < now() - make_interval(hours => $1::int) ORDER BY bucket LIMIT $2)",
        rollup_hours,
        batch,
    )
    .await?;
    Ok(Swept { executions, stage_rollups, execution_rollups })
}

/// Sweeps every `retention_interval_seconds` until shutdown.
pub async fn run(pool: PgPool, args: RetentionArgs, metrics: TrackerMetrics, shutdown: CancellationToken) {
    let interval = Duration::from_secs(args.retention_interval_seconds.max(1));
    loop {
        match sweep(&pool, &args).await {
            Ok(swept) => {
                for (table, n) in [
                    ("metric_executions", swept.executions),
                    ("metric_stage_rollups", swept.stage_rollups),
                    ("metric_execution_rollups", swept.execution_rollups),
                ] {
                    if n > 0 {
                        metrics.retention_deleted.get_or_create(&TableLabels { table }).inc_by(n);
                    }
                }
                if swept != Swept::default() {
                    tracing::info!(?swept, "retention sweep deleted old rows");
                }
            }
            Err(error) => tracing::warn!(%error, "retention sweep failed; trying again at the next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
