//! The retention sweep: once per interval, DLQ items older than
//! `RABBITMQ_DLQ_RETENTION_DAYS` are deleted, exactly as an admin's purge
//! would (audited, as actor `retention-sweep`). With several replicas, one
//! sweeps at a time: a session advisory lock, held on one connection for
//! the sweep's duration and released with it even if the process dies.
//! The batches take rows with `SKIP LOCKED` besides, so even overlapping
//! sweeps would delete each item once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use job_store::StoreResult;
use job_store::dlq::SweepLock;

use crate::ops::{self, Mode, PurgeOutcome, SWEEP_ACTOR};
use crate::state::AppState;

/// Sweeps at start and then every `interval`, until `shutdown`.
pub async fn run(state: Arc<AppState>, interval: Duration, shutdown: CancellationToken) {
    loop {
        match sweep_once(&state).await {
            Ok(Some(outcome)) if outcome.jobs + outcome.poison > 0 => {
                tracing::info!(jobs = outcome.jobs, poison = outcome.poison, cutoff = %outcome.cutoff, "retention sweep deleted DLQ items");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention sweep failed; trying again next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One sweep, unless another replica is sweeping (then `None`).
pub async fn sweep_once(state: &AppState) -> StoreResult<Option<PurgeOutcome>> {
    let Some(lock) = SweepLock::try_acquire(&state.pool).await? else {
        return Ok(None);
    };
    let days = state.retention_days;
    let reason = format!("retention: DLQ items older than {days} days (RABBITMQ_DLQ_RETENTION_DAYS)");
    let result = ops::purge(state, SWEEP_ACTOR, &reason, days, Mode::Sweep, false).await;
    lock.release().await;
    result.map(Some)
}
