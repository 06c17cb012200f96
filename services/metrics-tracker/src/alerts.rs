//! Alerts, evaluated on request from the current state; what each alert
//! means is in `metrics_core::alerts`. This module reads the inputs.

use job_model::JobPriority;
use job_store::StoreResult;
pub use metrics_core::alerts::*;
use sqlx::PgPool;

use crate::config::AlertArgs;

/// Jobs QUEUED per priority and DLQ in total.
pub async fn job_counts(pool: &PgPool) -> StoreResult<(Vec<(JobPriority, i64)>, i64)> {
    Ok(split_counts(&job_store::stats::queued_and_dlq(pool).await?))
}

pub async fn inputs(pool: &PgPool, alerts: &AlertArgs) -> StoreResult<AlertInputs> {
    let (queued, dlq) = job_counts(pool).await?;
    let window = crate::report::load_window(pool, i64::from(alerts.alert_window_minutes)).await?.executions;
    Ok(AlertInputs { queued, dlq, window })
}
