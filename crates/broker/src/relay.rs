//! The outbox relay: publishes messages committed to the outbox with
//! publisher confirms, and deletes them only once the broker confirmed
//! them. A 202 therefore survives a broker outage; the price is
//! at-least-once publishing, which the worker's claim turns into
//! exactly-once effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lapin::Connection;
use opentelemetry::trace::{Span as _, Status};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use job_model::Topology;
use job_store::StoreError;
use job_store::outbox::{self, LockedBatch};

use crate::backoff::Backoff;
use crate::publisher::{Outgoing, PublishError, Publisher};

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub amqp_url: String,
    /// Name shown in the broker's connection list.
    pub connection_name: String,
    pub topology: Topology,
    /// Rows published per transaction; one confirm wait per batch.
    pub batch_size: i64,
    /// How often to look for rows written by other processes (dlq-admin
    /// retries, other replicas) when nobody wakes the relay.
    pub poll_interval: Duration,
    /// The longest wait for a batch's confirms.
    pub publish_timeout: Duration,
}

/// Counters a service exposes in /metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub connected: AtomicBool,
}

/// Publishes outbox rows. Several relays (one per replica) share the table
/// safely: each batch is locked with `FOR UPDATE SKIP LOCKED`.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    pool: PgPool,
    config: RelayConfig,
    wake: Arc<Notify>,
    stats: Arc<RelayStats>,
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Publish(#[from] PublishError),
}

impl OutboxRelay {
    pub fn new(pool: PgPool, config: RelayConfig) -> Self {
        OutboxRelay { pool, config, wake: Arc::new(Notify::new()), stats: Arc::default() }
    }

    /// Call after committing outbox rows, so they go out now rather than at
    /// the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled, reconnecting with backoff whenever
    /// the broker or the database fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut session: Option<(Connection, Publisher)> = None;
        while !shutdown.is_cancelled() {
            let Some((connection, publisher)) = &session else {
                match self.connect().await {
                    Ok(s) => {
                        tracing::info!(connection = %self.config.connection_name, "outbox relay connected to the broker");
                        self.stats.connected.store(true, Ordering::Relaxed);
                        session = Some(s);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay cannot reach the broker; retrying");
                        backoff.wait(&shutdown).await;
                    }
                }
                continue;
            };
            match self.publish_batch(publisher).await {
                Ok(0) => {
                    backoff.reset();
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    // Notice a connection that died while idle, so readiness
                    // says so before the next publish finds out.
                    if !connection.status().connected() {
                        tracing::warn!("outbox relay lost its broker connection while idle");
                        session = None;
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                }
                Ok(_) => backoff.reset(),
                Err(error) => {
                    self.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "outbox batch not wholly published; the rest stays in the outbox");
                    // Reconnecting also re-declares the topology, which is
                    // what an unroutable message (a queue deleted) needs.
                    if matches!(error, RelayError::Publish(_)) {
                        if let Some((connection, _)) = session.take() {
                            let _ = connection.close(200, "reconnecting".into()).await;
                        }
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                    backoff.wait(&shutdown).await;
                }
            }
        }
        if let Some((connection, _)) = session {
            let _ = connection.close(200, "shutting down".into()).await;
        }
    }

    async fn connect(&self) -> lapin::Result<(Connection, Publisher)> {
        let connection = crate::connect(&self.config.amqp_url, &self.config.connection_name).await?;
        let publisher = Publisher::open(&connection, self.config.publish_timeout).await?;
        crate::topology::declare(&self.config.topology, publisher.channel()).await?;
        Ok((connection, publisher))
    }

    /// Publishes one batch and deletes the rows the broker confirmed.
    /// Returns how many rows went out; an error if any did not.
    async fn publish_batch(&self, publisher: &Publisher) -> Result<usize, RelayError> {
        let batch: LockedBatch = outbox::lock_batch(&self.pool, self.config.batch_size).await?;
        if batch.is_empty() {
            batch.complete(&[]).await?;
            return Ok(0);
        }
        let (mut spans, headers): (Vec<_>, Vec<_>) = batch
            .rows
            .iter()
            .map(|row| {
                crate::spans::producer_span(&row.message.headers, &row.message.exchange, &row.message.routing_key)
            })
            .unzip();
        let outgoing: Vec<Outgoing<'_>> = batch
            .rows
            .iter()
            .zip(&headers)
            .map(|(row, headers)| Outgoing {
                exchange: &row.message.exchange,
                routing_key: &row.message.routing_key,
                payload: &row.message.payload,
                headers,
                expiration: row.message.expiration,
                json: true,
                mandatory: true,
            })
            .collect();
        let results = match publisher.publish_all(&outgoing).await {
            Ok(results) => results,
            Err(error) => {
                spans.iter_mut().for_each(|s| s.set_status(Status::error(error.to_string())));
                return Err(error.into());
            }
        };
        let mut published = Vec::with_capacity(results.len());
        let mut first_failure = None;
        for ((row, result), span) in batch.rows.iter().zip(results).zip(&mut spans) {
            match result {
                Ok(()) => published.push(row.id),
                Err(error) => {
                    span.set_status(Status::error(error.to_string()));
                    first_failure.get_or_insert(error);
                }
            }
        }
        let sent = published.len();
        batch.complete(&published).await?;
        self.stats.published.fetch_add(sent as u64, Ordering::Relaxed);
        match first_failure {
            None => Ok(sent),
            Some(error) => Err(error.into()),
        }
    }
}
