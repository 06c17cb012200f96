//! Reads of metrics-tracker's per-minute rollups (`metric_stage_rollups`,
//! `metric_execution_rollups`), for its reports and for dlq-admin's console
//! overview. The rows come back as stored (sketches still encoded): merging
//! them is pure computation, done by the `metrics-core` crate. Writing the
//! rollups stays in metrics-tracker, their only writer.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::StoreResult;

/// One (minute, stage) row.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRollupRow {
    pub stage: String,
    pub count: i64,
    pub failures: i64,
    pub sum_ms: f64,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub sum_share_pct: f64,
    /// HDR histogram, V2 serialisation.
    pub sketch: Option<Vec<u8>>,
}

/// One (minute, priority, outcome) row.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRollupRow {
    pub priority: i16,
    pub outcome: String,
    pub count: i64,
    pub sum_total_ms: f64,
    pub max_total_ms: Option<f64>,
    pub total_sketch: Option<Vec<u8>>,
    pub wait_count: i64,
    pub sum_wait_ms: f64,
    pub max_wait_ms: Option<f64>,
    pub wait_sketch: Option<Vec<u8>>,
}

/// The rows of a window, read from one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupWindow {
    pub start: DateTime<Utc>,
    pub stages: Vec<StageRollupRow>,
    pub executions: Vec<ExecutionRollupRow>,
}

/// The rollups of the last `minutes` plus the current minute. Both tables
/// are read in one REPEATABLE READ snapshot, so the stage figures and the
/// execution figures describe the same events even while the consumer
/// commits batches.
pub async fn load_window(pool: &PgPool, minutes: i64) -> StoreResult<RollupWindow> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let start = sqlx::query_scalar!(
        r#"SELECT date_trunc('minute', now()) - make_interval(mins => $1::int) AS "start!""#,
        minutes as i32
    )
    .fetch_one(&mut *tx)
    .await?;
    let stages = sqlx::query_as!(
        StageRollupRow,
        "SELECT stage, count, failures, sum_ms, min_ms, max_ms, sum_share_pct, sketch \
         FROM metric_stage_rollups WHERE bucket >= $1",
        start
    )
    .fetch_all(&mut *tx)
    .await?;
    let executions = sqlx::query_as!(
        ExecutionRollupRow,
        "SELECT priority, outcome, count, sum_total_ms, max_total_ms, total_sketch, \
                wait_count, sum_wait_ms, max_wait_ms, wait_sketch \
         FROM metric_execution_rollups WHERE bucket >= $1",
        start
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RollupWindow { start, stages, executions })
}

/// Attempts per time step and outcome over the last `minutes`, oldest
/// first: the overview's throughput chart. Steps are `step_minutes` wide,
/// aligned to whole steps since the epoch.
pub async fn outcome_series(
    pool: &PgPool,
    minutes: i64,
    step_minutes: i32,
) -> StoreResult<Vec<(DateTime<Utc>, String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT date_bin(make_interval(mins => $2::int), bucket, TIMESTAMPTZ '2000-01-01') AS "step!",
                  outcome, sum(count)::bigint AS "count!"
           FROM metric_execution_rollups
           WHERE bucket >= date_trunc('minute', now()) - make_interval(mins => $1::int)
           GROUP BY 1, 2 ORDER BY 1, 2"#,
        minutes as i32,
        step_minutes,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.step, r.outcome, r.count)).collect())
}
