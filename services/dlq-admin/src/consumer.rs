//! The `jobs.dlq` importer: consumes every message, records it in Postgres
//! ([`crate::import`]) and acks it only once that committed. Reconnects
//! with backoff whenever the broker goes away; a stream that errors or
//! ends is a reconnect, never the end of consumption.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use job_model::Topology;
use job_model::outbox::Backoff;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::import::{self, DeadLetter};
use crate::metrics::{AdminMetrics, ImportLabels};

#[derive(Debug, Clone)]
pub struct DlqConsumer {
    pub pool: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
    pub prefetch: u16,
    /// True while consuming; read by /readyz and /metrics.
    pub connected: Arc<AtomicBool>,
    pub metrics: AdminMetrics,
}

impl DlqConsumer {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !shutdown.is_cancelled() {
            let (connection, consumer) = match self.open().await {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%error, "dlq importer cannot reach the broker; retrying");
                    sleep_or_cancel(backoff.next_delay(), &shutdown).await;
                    continue;
                }
            };
            backoff.reset();
            self.connected.store(true, Ordering::Relaxed);
            tracing::info!(queue = %self.topology.dlq_queue(), "importing dead letters");
            let broken = self.consume(consumer, &shutdown).await;
            self.connected.store(false, Ordering::Relaxed);
            // Unacked deliveries go back to the queue when the connection closes.
            let _ = connection.close(200, "dlq importer stopping".into()).await;
            if broken {
                tracing::warn!("dlq importer lost the broker; reconnecting");
                sleep_or_cancel(backoff.next_delay(), &shutdown).await;
            }
        }
    }

    async fn open(&self) -> lapin::Result<(Connection, lapin::Consumer)> {
        let props = ConnectionProperties::default().with_connection_name("dlq-admin importer".into());
        let connection = Connection::connect(&self.amqp_url, props).await?;
        let channel = connection.create_channel().await?;
        self.topology.declare(&channel).await?;
        // Per-consumer prefetch (global=false): how many unacked dead
        // letters the broker pushes before this importer acks some.
        channel.basic_qos(self.prefetch, BasicQosOptions { global: false }).await?;
        let consumer = channel
            .basic_consume(
                self.topology.dlq_queue().as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((connection, consumer))
    }

    /// Imports until shutdown (false) or until the stream breaks (true).
    async fn consume(&self, mut consumer: lapin::Consumer, shutdown: &CancellationToken) -> bool {
        loop {
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = shutdown.cancelled() => return false,
            };
            match next {
                Some(Ok(delivery)) => {
                    if !self.handle(delivery, shutdown).await {
                        return !shutdown.is_cancelled();
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "dlq consumer stream failed");
                    return true;
                }
                None => {
                    tracing::warn!("dlq consumer stream ended (consumer cancelled by the broker?)");
                    return true;
                }
            }
        }
    }

    /// Imports one message, waiting out database outages with backoff (the
    /// delivery stays unacked meanwhile), then acks it. False when the
    /// delivery could not be settled (shutdown, or the channel broke).
    async fn handle(&self, delivery: Delivery, shutdown: &CancellationToken) -> bool {
        let letter = DeadLetter::from_delivery(&delivery);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let outcome = loop {
            match import::import(&self.pool, &letter).await {
                Ok(outcome) => break outcome,
                Err(error) => {
                    tracing::warn!(%error, "could not record a dead letter; retrying");
                    sleep_or_cancel(backoff.next_delay(), shutdown).await;
                    if shutdown.is_cancelled() {
                        return false;
                    }
                }
            }
        };
        self.metrics.imported.get_or_create(&ImportLabels { outcome: outcome.label() }).inc();
        match delivery.acker.ack(BasicAckOptions::default()).await {
            Ok(_) => true,
            Err(error) => {
                // Recorded but not acked: it comes back, and the import is idempotent.
                tracing::warn!(%error, "ack failed after import");
                false
            }
        }
    }
}

async fn sleep_or_cancel(delay: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = shutdown.cancelled() => {}
    }
}
