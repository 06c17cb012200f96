//! The `metrics.events` handler: execution events in small batches, one
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

use broker::backoff::retry_transient;
use broker::{Batch, Settle};
use job_model::ExecutionEvent;
use job_model::message::SCHEMA_VERSION;
use opentelemetry::trace::Span as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics::TrackerMetrics;
use crate::rollup::{self, RecordOutcome};

/// Records batches of events; the broker's consumer session (one queue,
/// batches of `batch_size` within `linger`, one batch at a time so that
/// one `multiple` ack settles it) feeds it.
pub struct EventHandler {
    pub pool: PgPool,
    pub metrics: TrackerMetrics,
    /// The queue consumed, for span names.
    pub queue: String,
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

#[async_trait::async_trait]
impl broker::Handler for EventHandler {
    /// Records a batch; acked once committed (or refused as malformed).
    async fn handle(&self, batch: &Batch, abort: &CancellationToken) -> Settle {
        // One CONSUMER span per event, continuing the attempt's trace; they
        // end when the batch is settled.
        let mut spans: Vec<_> = batch.deliveries.iter().map(|d| broker::spans::consumer_span(d, &self.queue)).collect();
        let mut events = Vec::with_capacity(batch.deliveries.len());
        let mut malformed = 0u64;
        for (delivery, span) in batch.deliveries.iter().zip(&mut spans) {
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

        let Some(outcome) = self.record_with_retry(&events, abort).await else {
            // Shutting down while Postgres is away: give the batch back.
            return Settle::Requeue;
        };
        for &i in &outcome.recorded {
            self.metrics.observe(&events[i]);
        }
        self.metrics.count_events("recorded", outcome.recorded.len() as u64);
        self.metrics.count_events("duplicate", outcome.duplicates as u64);
        self.metrics.count_events("malformed", malformed + outcome.refused as u64);
        Settle::Ack
    }
}

impl EventHandler {
    /// Records the events, retrying while Postgres is unavailable. `None`
    /// when shutdown came first.
    async fn record_with_retry(&self, events: &[ExecutionEvent], abort: &CancellationToken) -> Option<Recorded> {
        let unavailable = service_common::error::is_unavailable;
        match retry_transient(abort, "recording a batch of events", unavailable, || {
            rollup::record_batch(&self.pool, events)
        })
        .await?
        {
            Ok(RecordOutcome { inserted, duplicates }) => Some(Recorded { recorded: inserted, duplicates, refused: 0 }),
            Err(error) => {
                tracing::warn!(%error, events = events.len(), "batch refused; recording its events one by one");
                self.record_one_by_one(events, abort).await
            }
        }
    }

    async fn record_one_by_one(&self, events: &[ExecutionEvent], abort: &CancellationToken) -> Option<Recorded> {
        let unavailable = service_common::error::is_unavailable;
        let mut result = Recorded::default();
        for (i, event) in events.iter().enumerate() {
            match retry_transient(abort, "recording an event", unavailable, || {
                rollup::record_batch(&self.pool, std::slice::from_ref(event))
            })
            .await?
            {
                Ok(outcome) if outcome.inserted.is_empty() => result.duplicates += 1,
                Ok(_) => result.recorded.push(i),
                Err(error) => {
                    tracing::error!(%error, job_id = %event.job_id, attempt = event.attempt, "event refused by the database; acked and dropped");
                    result.refused += 1;
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
