//! The transactional outbox: messages are committed with the rows that cause
//! them, then published by [`OutboxRelay`] with publisher confirms, and deleted
//! only once the broker has confirmed them. A 202 therefore survives a broker
//! outage; the price is at-least-once publishing, which the worker's claim
//! turns into exactly-once effect.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Topology;

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub exchange: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    /// String headers: job id, attempt, W3C trace context.
    pub headers: BTreeMap<String, String>,
    /// Per-message TTL; a retry tier uses it to add jitter below its own TTL.
    pub expiration: Option<Duration>,
}

impl OutboxMessage {
    pub fn new(exchange: String, routing_key: String, payload: Vec<u8>, headers: BTreeMap<String, String>) -> Self {
        OutboxMessage { exchange, routing_key, payload, headers, expiration: None }
    }
}

/// Adds a message to the outbox inside the caller's transaction.
pub async fn enqueue(tx: &mut Transaction<'_, Postgres>, message: &OutboxMessage) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload, headers, expiration_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&message.exchange)
    .bind(&message.routing_key)
    .bind(&message.payload)
    .bind(Json(&message.headers))
    .bind(message.expiration.map(|d| d.as_millis() as i64))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Messages not yet confirmed by the broker.
pub async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(pool).await
}

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
}

/// Counters a service exposes in /metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub connected: AtomicBool,
}

/// Publishes outbox rows. Several relays (one per ingest-api replica) share
/// the table safely: each batch is locked with `FOR UPDATE SKIP LOCKED`.
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
    Db(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("broker refused a message (nack)")]
    Nacked,
    #[error("message to {exchange}/{routing_key} was unroutable: is the topology declared?")]
    Unroutable { exchange: String, routing_key: String },
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    exchange: String,
    routing_key: String,
    payload: Vec<u8>,
    headers: Json<BTreeMap<String, String>>,
    expiration_ms: Option<i64>,
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

    /// Runs until `shutdown` is cancelled, reconnecting with capped backoff
    /// whenever the broker or the database fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut channel: Option<(Connection, Channel)> = None;
        while !shutdown.is_cancelled() {
            if channel.is_none() {
                match self.connect().await {
                    Ok(c) => {
                        tracing::info!(connection = %self.config.connection_name, "outbox relay connected to the broker");
                        self.stats.connected.store(true, Ordering::Relaxed);
                        channel = Some(c);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay cannot reach the broker; retrying");
                        sleep_or_cancel(backoff.next_delay(), &shutdown).await;
                        continue;
                    }
                }
            }
            let (_, ch) = channel.as_ref().expect("connected above");
            match self.publish_batch(ch).await {
                Ok(0) => {
                    backoff.reset();
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    // Notice a connection that died while idle, so readiness
                    // says so before the next publish finds out.
                    if channel.as_ref().is_some_and(|(conn, _)| !conn.status().connected()) {
                        tracing::warn!("outbox relay lost its broker connection while idle");
                        channel = None;
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                }
                Ok(_) => backoff.reset(),
                Err(error) => {
                    self.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "outbox batch not published; it stays in the outbox");
                    if matches!(error, RelayError::Amqp(_) | RelayError::Nacked | RelayError::Unroutable { .. }) {
                        if let Some((conn, _)) = channel.take() {
                            let _ = conn.close(200, "reconnecting".into()).await;
                        }
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                    sleep_or_cancel(backoff.next_delay(), &shutdown).await;
                }
            }
        }
        if let Some((conn, _)) = channel {
            let _ = conn.close(200, "shutting down".into()).await;
        }
    }

    async fn connect(&self) -> Result<(Connection, Channel), lapin::Error> {
        let props = ConnectionProperties::default().with_connection_name(self.config.connection_name.clone().into());
        let conn = Connection::connect(&self.config.amqp_url, props).await?;
        let channel = conn.create_channel().await?;
        // Without confirms a publish "succeeds" once written to the socket,
        // which is not proof the broker has the message.
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        self.config.topology.declare(&channel).await?;
        Ok((conn, channel))
    }

    /// Publishes one batch and deletes it once every message is confirmed.
    /// Returns how many rows went out.
    async fn publish_batch(&self, channel: &Channel) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as::<_, OutboxRow>(
            "SELECT id, exchange, routing_key, payload, headers, expiration_ms FROM outbox \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }

        // Publish the whole batch, then wait for all confirms together: one
        // round trip per batch instead of one per message.
        let mut confirms = Vec::with_capacity(rows.len());
        let mut spans = Vec::with_capacity(rows.len());
        for row in &rows {
            let (span, headers) = producer_span(row);
            spans.push(span);
            let confirm = channel
                .basic_publish(
                    row.exchange.as_str().into(),
                    row.routing_key.as_str().into(),
                    // mandatory: an unroutable message comes back instead of vanishing.
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    &row.payload,
                    properties(&headers, row.expiration_ms),
                )
                .await?;
            confirms.push(confirm);
        }
        let confirmations = match try_join_all(confirms).await {
            Ok(c) => c,
            Err(error) => {
                spans.iter_mut().for_each(|s| s.set_status(Status::error(error.to_string())));
                return Err(error.into());
            }
        };
        for ((row, confirmation), span) in rows.iter().zip(confirmations).zip(&mut spans) {
            match confirmation {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                Confirmation::Ack(Some(_)) => {
                    span.set_status(Status::error("unroutable"));
                    return Err(RelayError::Unroutable {
                        exchange: row.exchange.clone(),
                        routing_key: row.routing_key.clone(),
                    });
                }
                Confirmation::Nack(_) => {
                    span.set_status(Status::error("nacked"));
                    return Err(RelayError::Nacked);
                }
            }
        }

        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
        // Were this commit lost, the batch would be published again: the
        // at-least-once half of the bargain.
        tx.commit().await?;
        self.stats.published.fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok(ids.len())
    }
}

/// A PRODUCER span per message, child of the context the row was written
/// in (the request or attempt that caused it), following the OpenTelemetry
/// messaging conventions; the message carries this span's context on.
fn producer_span(row: &OutboxRow) -> (opentelemetry::global::BoxedSpan, BTreeMap<String, String>) {
    let parent = telemetry::context_from_map(&row.headers.0);
    let tracer = opentelemetry::global::tracer("docflow");
    let mut attributes = vec![
        KeyValue::new("messaging.system", "rabbitmq"),
        KeyValue::new("messaging.operation.type", "send"),
        KeyValue::new("messaging.destination.name", row.exchange.clone()),
        KeyValue::new("messaging.rabbitmq.destination.routing_key", row.routing_key.clone()),
    ];
    if let Some(job_id) = row.headers.0.get(crate::message::headers::JOB_ID) {
        attributes.push(KeyValue::new("messaging.message.id", job_id.clone()));
        attributes.push(KeyValue::new("docflow.job_id", job_id.clone()));
    }
    let span = tracer
        .span_builder(format!("publish {}", row.exchange))
        .with_kind(SpanKind::Producer)
        .with_attributes(attributes)
        .start_with_context(&tracer, &parent);
    let cx = opentelemetry::Context::new().with_remote_span_context(span.span_context().clone());
    let mut headers = row.headers.0.clone();
    if span.span_context().is_valid() {
        headers.extend(telemetry::headers_for(&cx));
    }
    (span, headers)
}

/// Persistent JSON messages with the row's headers.
fn properties(headers: &BTreeMap<String, String>, expiration_ms: Option<i64>) -> BasicProperties {
    let mut table = FieldTable::default();
    for (k, v) in headers {
        table.insert(k.as_str().into(), AMQPValue::LongString(LongString::from(v.as_str())));
    }
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(table);
    if let Some(job_id) = headers.get(crate::message::headers::JOB_ID) {
        props = props.with_message_id(job_id.as_str().into());
    }
    if let Some(ms) = expiration_ms {
        props = props.with_expiration(ms.max(0).to_string().into());
    }
    props
}

async fn sleep_or_cancel(delay: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Capped exponential backoff for reconnect loops.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, current: initial }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// Waits (polling) until the outbox is empty or `timeout` passes; used at
/// shutdown so the last committed messages leave with this process when
/// they can. Returns whether it emptied.
pub async fn wait_until_empty(pool: &PgPool, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if matches!(backlog(pool).await, Ok(0)) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
