//! The `metrics.events` consumer: execution events in small batches, one
//! transaction per batch, acked after the commit.
//!
//! Malformed events (not JSON, another schema version, impossible values)
//! are acked, counted in `docflow_metrics_events_total{result="malformed"}`
//! and logged with their routing key and reason. They are not dead-lettered:
//! an event is derived data (the job's row and `job_stages` in Postgres stay
//! the source of truth), nobody would replay it, and `jobs.dlq` is for jobs,
//! which dlq-admin would offer to retry. What matters is that it can never
//! loop, which acking guarantees.
//!
//! A batch the database refuses for a reason other than being unavailable is
//! retried one event per transaction, so one bad event cannot hold the rest
//! back; an event refused on its own is counted as malformed and acked.
//! While Postgres is unavailable the batch is retried with back-off and
//! stays unacked (the broker redelivers it if this process dies meanwhile).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use job_model::message::SCHEMA_VERSION;
use job_model::outbox::Backoff;
use job_model::{ExecutionEvent, Topology};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use opentelemetry::trace::Span as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics::TrackerMetrics;
use crate::rollup::{self, RecordOutcome};

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub amqp_url: String,
    pub topology: Topology,
    pub prefetch: u16,
    pub batch_size: usize,
    pub linger: Duration,
    pub connection_name: String,
}

pub struct EventConsumer {
    pub config: ConsumerConfig,
    pub pool: PgPool,
    pub metrics: TrackerMetrics,
    /// True while consuming; read by /readyz.
    pub connected: Arc<AtomicBool>,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Malformed {
    #[error("body is not an execution event: {0}")]
    Shape(String),
    #[error("unsupported schema_version {0} (this build understands {SCHEMA_VERSION})")]
    SchemaVersion(u64),
    #[error("invalid value: {0}")]
    Value(String),
}

/// Decodes and checks one event body.
pub fn decode(body: &[u8]) -> Result<ExecutionEvent, Malformed> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| Malformed::Shape(e.to_string()))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => return Err(Malformed::SchemaVersion(v)),
        None => return Err(Malformed::Shape("missing or non-numeric schema_version".into())),
    }
    let event: ExecutionEvent = serde_json::from_value(value).map_err(|e| Malformed::Shape(e.to_string()))?;
    validate(&event)?;
    Ok(event)
}

fn validate(event: &ExecutionEvent) -> Result<(), Malformed> {
    let bad = |what: String| Err(Malformed::Value(what));
    let duration_ok = |v: f64| v.is_finite() && v >= 0.0;
    if event.attempt < 1 {
        return bad(format!("attempt {} is below 1", event.attempt));
    }
    for (name, v) in [("total_duration_ms", event.total_duration_ms), ("queue_wait_ms", event.queue_wait_ms)] {
        if !duration_ok(v) {
            return bad(format!("{name} {v} is not a non-negative number"));
        }
    }
    // Postgres TEXT cannot hold NUL; such an event would fail its batch forever.
    let texts = [
        Some(&event.document_id),
        Some(&event.worker_id),
        event.error_message.as_ref(),
        event.error_stage.as_ref(),
        event.trace_id.as_ref(),
    ];
    if texts.into_iter().flatten().any(|s| s.contains('\0')) {
        return bad("a text field contains a NUL character".into());
    }
    let mut seqs = std::collections::HashSet::new();
    for stage in &event.stages {
        if stage.stage.is_empty()
            || stage.stage.len() > 64
            || !stage.stage.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad(format!("stage name {:?} is not a short identifier", stage.stage));
        }
        if stage.status != "succeeded" && stage.status != "failed" {
            return bad(format!("stage {} has status {:?} (succeeded or failed)", stage.stage, stage.status));
        }
        if !duration_ok(stage.duration_ms) || !stage.offset_ms.is_finite() {
            return bad(format!(
                "stage {} has duration {} and offset {}",
                stage.stage, stage.duration_ms, stage.offset_ms
            ));
        }
        if stage.error.as_ref().is_some_and(|e| e.contains('\0')) {
            return bad("a stage error contains a NUL character".into());
        }
        if !seqs.insert(stage.seq) {
            return bad(format!("stage seq {} appears twice", stage.seq));
        }
    }
    Ok(())
}

enum Ended {
    Shutdown,
    Broken,
}

impl EventConsumer {
    /// Consumes until `shutdown`, reconnecting with back-off whenever the
    /// broker goes away; a stream error never ends consumption by itself.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !shutdown.is_cancelled() {
            let (connection, channel, consumer) = match self.open().await {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%error, "cannot reach the broker; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            backoff.reset();
            self.set_connected(true);
            tracing::info!(queue = %self.config.topology.metrics_events_queue(), "consuming execution events");
            let ended = self.consume(&channel, consumer, &shutdown).await;
            self.set_connected(false);
            match ended {
                Ended::Shutdown => {
                    // Unacked deliveries (none, unless a batch was abandoned
                    // while Postgres was away) return to the queue on close.
                    let _ = connection.close(200, "shutting down".into()).await;
                    break;
                }
                Ended::Broken => {
                    tracing::warn!("broker connection lost; reconnecting");
                    let _ = connection.close(200, "reconnecting".into()).await;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        tracing::info!("event consumer stopped");
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        self.metrics.consumer_connected.set(i64::from(connected));
    }

    async fn open(&self) -> lapin::Result<(Connection, Channel, lapin::Consumer)> {
        let props = ConnectionProperties::default().with_connection_name(self.config.connection_name.clone().into());
        let connection = Connection::connect(&self.config.amqp_url, props).await?;
        let channel = connection.create_channel().await?;
        // Idempotent: the exchange, the queue and its `#` binding exist
        // whichever service started first.
        self.config.topology.declare(&channel).await?;
        // Per-consumer prefetch (global=false). It bounds how many events are
        // unacked at once, so it must cover a whole batch.
        channel.basic_qos(self.config.prefetch, BasicQosOptions { global: false }).await?;
        let consumer = channel
            .basic_consume(
                self.config.topology.metrics_events_queue().into(),
                "metrics-tracker".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((connection, channel, consumer))
    }

    async fn consume(&self, channel: &Channel, mut consumer: lapin::Consumer, shutdown: &CancellationToken) -> Ended {
        loop {
            // Wait for the first event of a batch; look at the channel now
            // and then in case the stream stalls instead of failing.
            let first = loop {
                tokio::select! {
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => break delivery,
                        Some(Err(error)) => {
                            tracing::warn!(%error, "event stream failed");
                            return Ended::Broken;
                        }
                        None => {
                            tracing::warn!("event stream ended");
                            return Ended::Broken;
                        }
                    },
                    _ = shutdown.cancelled() => {
                        let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                        return Ended::Shutdown;
                    }
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        if !channel.status().connected() {
                            return Ended::Broken;
                        }
                    }
                }
            };
            let mut batch = vec![first];
            let mut broken = false;
            let deadline = tokio::time::Instant::now() + self.config.linger;
            while batch.len() < self.config.batch_size {
                match tokio::time::timeout_at(deadline, consumer.next()).await {
                    Ok(Some(Ok(delivery))) => batch.push(delivery),
                    Ok(Some(Err(error))) => {
                        tracing::warn!(%error, "event stream failed");
                        broken = true;
                        break;
                    }
                    Ok(None) => {
                        broken = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            // Deliveries in hand are processed even when the stream broke:
            // their acks will fail and the broker will redeliver them, which
            // the raw rows' primary key turns into no-ops.
            if !self.handle(batch, shutdown).await || broken {
                return Ended::Broken;
            }
        }
    }

    /// Records a batch and acks it; false when the ack could not be sent.
    async fn handle(&self, batch: Vec<Delivery>, shutdown: &CancellationToken) -> bool {
        let queue = self.config.topology.metrics_events_queue();
        // One CONSUMER span per event, continuing the attempt's trace; they
        // end when the batch is settled.
        let mut spans: Vec<_> = batch.iter().map(|d| consume_span(d, &queue)).collect();
        let mut events = Vec::with_capacity(batch.len());
        let mut malformed = 0u64;
        for (delivery, span) in batch.iter().zip(&mut spans) {
            match decode(&delivery.data) {
                Ok(event) => events.push(event),
                Err(reason) => {
                    span.set_status(opentelemetry::trace::Status::error(reason.to_string()));
                    malformed += 1;
                    tracing::warn!(
                        routing_key = %delivery.routing_key,
                        %reason,
                        "malformed execution event; acked and dropped"
                    );
                }
            }
        }

        let Some(outcome) = self.record_with_retry(&events, shutdown).await else {
            // Shutting down while Postgres is away: leave the batch unacked.
            return false;
        };
        for &i in &outcome.recorded {
            self.metrics.observe(&events[i]);
        }
        self.metrics.count_events("recorded", outcome.recorded.len() as u64);
        self.metrics.count_events("duplicate", outcome.duplicates as u64);
        self.metrics.count_events("malformed", malformed + outcome.refused as u64);

        // Deliveries on one channel are acked in order, so acking the last
        // with `multiple` settles the whole batch (AMQP 0-9-1 basic.ack).
        let last = batch.last().expect("a batch has at least one delivery");
        match last.acker.ack(BasicAckOptions { multiple: true }).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "ack failed; the broker will redeliver (duplicates are ignored)");
                false
            }
        }
    }
}

fn consume_span(delivery: &Delivery, queue: &str) -> opentelemetry::global::BoxedSpan {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanKind, Tracer as _};
    let parent = telemetry::context_from_amqp(delivery.properties.headers().as_ref());
    let tracer = opentelemetry::global::tracer("docflow");
    let mut attributes = vec![
        KeyValue::new("messaging.system", "rabbitmq"),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.destination.name", queue.to_owned()),
        KeyValue::new("messaging.rabbitmq.destination.routing_key", delivery.routing_key.to_string()),
    ];
    if let Some(id) = delivery.properties.message_id() {
        attributes.push(KeyValue::new("messaging.message.id", id.to_string()));
    }
    tracer
        .span_builder(format!("process {queue}"))
        .with_kind(SpanKind::Consumer)
        .with_attributes(attributes)
        .start_with_context(&tracer, &parent)
}

impl EventConsumer {
    /// Records the events, retrying while Postgres is unavailable. `None`
    /// when shutdown came first.
    async fn record_with_retry(&self, events: &[ExecutionEvent], shutdown: &CancellationToken) -> Option<Recorded> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match rollup::record_batch(&self.pool, events).await {
                Ok(RecordOutcome { inserted, duplicates }) => {
                    return Some(Recorded { recorded: inserted, duplicates, refused: 0 });
                }
                Err(error) if service_common::error::is_unavailable(&error) => {
                    tracing::warn!(%error, "database unavailable; retrying the batch");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, events = events.len(), "batch refused; recording its events one by one");
                    return self.record_one_by_one(events, shutdown).await;
                }
            }
        }
    }

    async fn record_one_by_one(&self, events: &[ExecutionEvent], shutdown: &CancellationToken) -> Option<Recorded> {
        let mut result = Recorded::default();
        for (i, event) in events.iter().enumerate() {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                match rollup::record_batch(&self.pool, std::slice::from_ref(event)).await {
                    Ok(outcome) => {
                        if outcome.inserted.is_empty() {
                            result.duplicates += 1;
                        } else {
                            result.recorded.push(i);
                        }
                        break;
                    }
                    Err(error) if service_common::error::is_unavailable(&error) => {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff.next_delay()) => {}
                            _ = shutdown.cancelled() => return None,
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, job_id = %event.job_id, attempt = event.attempt, "event refused by the database; acked and dropped");
                        result.refused += 1;
                        break;
                    }
                }
            }
        }
        Some(result)
    }
}

#[derive(Debug, Default)]
struct Recorded {
    recorded: Vec<usize>,
    duplicates: usize,
    refused: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> serde_json::Value {
        serde_json::json!({
            "schema_version": 1,
            "job_id": uuid::Uuid::now_v7(),
            "attempt": 1,
            "document_id": "doc",
            "priority": "HIGH",
            "outcome": "completed",
            "error_message": null,
            "error_stage": null,
            "worker_id": "w1",
            "submitted_at": "2026-11-29T10:00:00Z",
            "started_at": "2026-11-29T10:00:01Z",
            "finished_at": "2026-11-29T10:00:02Z",
            "queue_wait_ms": 1000.0,
            "total_duration_ms": 1000.0,
            "stages": [{"seq": 1, "stage": "upload", "status": "succeeded", "started_at": "2026-11-29T10:00:01Z",
                        "offset_ms": 0.0, "duration_ms": 10.0, "items_processed": 1, "bytes_processed": 10, "error": null}],
            "trace_id": null
        })
    }

    fn decode_value(v: &serde_json::Value) -> Result<ExecutionEvent, Malformed> {
        decode(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn a_valid_event_decodes() {
        assert!(decode_value(&event()).is_ok());
    }

    #[test]
    fn malformed_events_are_refused_with_a_reason() {
        assert!(matches!(decode(b"nope"), Err(Malformed::Shape(_))));
        let mut e = event();
        e["schema_version"] = 2.into();
        assert_eq!(decode_value(&e).unwrap_err(), Malformed::SchemaVersion(2));
        let mut e = event();
        e["stages"][0]["duration_ms"] = (-1.0).into();
        assert!(matches!(decode_value(&e), Err(Malformed::Value(_))));
        let mut e = event();
        e["stages"][0]["status"] = "skipped".into();
        assert!(matches!(decode_value(&e), Err(Malformed::Value(_))));
        let mut e = event();
        e["document_id"] = "a\u{0}b".into();
        assert!(matches!(decode_value(&e), Err(Malformed::Value(_))));
        let mut e = event();
        e["outcome"] = "exploded".into();
        assert!(matches!(decode_value(&e), Err(Malformed::Shape(_))));
    }
}
