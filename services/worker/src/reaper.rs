//! Rescues jobs whose worker died: once a lease has expired, the job gets a
//! fresh message through the outbox and the next claim counts the crash.

use std::time::Duration;

use broker::OutboxRelay;
use job_model::Topology;
use job_store::lifecycle;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::messages;
use crate::metrics::WorkerMetrics;

pub async fn run(
    pool: PgPool,
    topology: Topology,
    relay: OutboxRelay,
    metrics: WorkerMetrics,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match lifecycle::rescue_expired(&pool, 100, |job| messages::requeue(&topology, job)).await {
            Ok(rescued) if !rescued.is_empty() => {
                tracing::warn!(count = rescued.len(), jobs = ?rescued, "rescued jobs whose lease expired");
                metrics.rescued.inc_by(rescued.len() as u64);
                relay.wake();
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "lease reaper could not run"),
        }
    }
}
