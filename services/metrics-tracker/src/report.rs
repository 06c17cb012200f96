//! Reports over the per-minute rollups: the rows come from
//! `job_store::rollups`, the computation (and every definition: execution,
//! success rate, window, percentile error) from `metrics_core::report`.

use chrono::{DateTime, Utc};
pub use metrics_core::report::*;
use sqlx::PgPool;

use crate::config::SlaArgs;

/// The start of the window of `minutes` ending now (whole minutes back).
pub async fn window_start(pool: &PgPool, minutes: i64) -> job_store::StoreResult<DateTime<Utc>> {
    Ok(job_store::rollups::load_window(pool, minutes).await?.start)
}

/// Merges the rollups of the last `minutes` (plus the current minute),
/// read from one snapshot.
pub async fn load_window(pool: &PgPool, minutes: i64) -> job_store::StoreResult<WindowData> {
    Ok(job_store::rollups::load_window(pool, minutes).await?.into())
}

/// The whole report for the last `hours`.
pub async fn report(pool: &PgPool, hours: u32, sla: &SlaArgs) -> job_store::StoreResult<Report> {
    let data = load_window(pool, i64::from(hours) * 60).await?;
    let queued = job_store::stats::queued_now(pool).await?;
    Ok(compute_report(&data, hours, sla, &queued))
}
