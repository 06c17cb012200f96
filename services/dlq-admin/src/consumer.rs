//! The `jobs.dlq` importer: consumes every message, records it in Postgres
//! ([`crate::import`]) and acks it only once that committed. Reconnects
//! with backoff whenever the broker goes away; a stream that errors or
//! ends is a reconnect, never the end of consumption.

use broker::backoff::retry_transient;
use broker::lapin::message::Delivery;
use broker::{Batch, Settle};
use job_store::StoreError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::import::{self, DeadLetter};
use crate::metrics::{AdminMetrics, ImportLabels};

/// Imports dead letters one at a time; the broker's consumer session feeds it.
pub struct DlqImporter {
    pub pool: PgPool,
    pub metrics: AdminMetrics,
    /// The queue consumed (`jobs.dlq` under the namespace), for the spans.
    pub queue: String,
}

#[async_trait::async_trait]
impl broker::Handler for DlqImporter {
    /// Imports one message, waiting out database outages with backoff (the
    /// delivery stays unacked meanwhile); acked once recorded.
    async fn handle(&self, batch: &Batch, abort: &CancellationToken) -> Settle {
        for delivery in &batch.deliveries {
            // One CONSUMER span per dead letter, continuing the trace of
            // whatever dead-lettered it (a worker's attempt, a relay's
            // publish), so the import shows in that job's trace.
            let span = broker::spans::consumer_tracing_span(delivery, &self.queue);
            if let Some(settle) = self.import_one(delivery, abort).instrument(span).await {
                return settle;
            }
        }
        Settle::Ack
    }
}

impl DlqImporter {
    /// Records one delivery; `Some` settles the whole batch now (requeued).
    async fn import_one(&self, delivery: &Delivery, abort: &CancellationToken) -> Option<Settle> {
        let letter = DeadLetter::from_delivery(delivery);
        let span = tracing::Span::current();
        if let Some(job_id) = letter.job_id_header() {
            span.record("docflow.job_id", job_id);
        }
        let imported = retry_transient(abort, "recording a dead letter", StoreError::is_unavailable, || {
            import::import(&self.pool, &letter)
        })
        .await;
        match imported {
            Some(Ok(outcome)) => {
                span.record("docflow.outcome", outcome.label());
                self.metrics.imported.get_or_create(&ImportLabels { outcome: outcome.label() }).inc();
                None
            }
            // Shutting down while Postgres is away: leave it on the queue.
            None => Some(Settle::Requeue),
            Some(Err(error)) => {
                // A bug, not an outage: the message stays on the queue
                // (and is redelivered) rather than being lost.
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", error.to_string());
                tracing::error!(%error, "could not record a dead letter; requeueing it");
                Some(Settle::Requeue)
            }
        }
    }
}
