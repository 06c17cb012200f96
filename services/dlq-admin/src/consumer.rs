//! The `jobs.dlq` importer: consumes every message, records it in Postgres
//! ([`crate::import`]) and acks it only once that committed. Reconnects
//! with backoff whenever the broker goes away; a stream that errors or
//! ends is a reconnect, never the end of consumption.

use broker::backoff::retry_transient;
use broker::{Batch, Settle};
use job_store::StoreError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::import::{self, DeadLetter};
use crate::metrics::{AdminMetrics, ImportLabels};

/// Imports dead letters one at a time; the broker's consumer session feeds it.
pub struct DlqImporter {
    pub pool: PgPool,
    pub metrics: AdminMetrics,
}

#[async_trait::async_trait]
impl broker::Handler for DlqImporter {
    /// Imports one message, waiting out database outages with backoff (the
    /// delivery stays unacked meanwhile); acked once recorded.
    async fn handle(&self, batch: &Batch, abort: &CancellationToken) -> Settle {
        for delivery in &batch.deliveries {
            let letter = DeadLetter::from_delivery(delivery);
            let imported = retry_transient(abort, "recording a dead letter", StoreError::is_unavailable, || {
                import::import(&self.pool, &letter)
            })
            .await;
            match imported {
                Some(Ok(outcome)) => {
                    self.metrics.imported.get_or_create(&ImportLabels { outcome: outcome.label() }).inc();
                }
                // Shutting down while Postgres is away: leave it on the queue.
                None => return Settle::Requeue,
                Some(Err(error)) => {
                    // A bug, not an outage: the message stays on the queue
                    // (and is redelivered) rather than being lost.
                    tracing::error!(%error, "could not record a dead letter; requeueing it");
                    return Settle::Requeue;
                }
            }
        }
        Settle::Ack
    }
}
