//! One delivery, start to finish: decode, claim, run the pipeline under a
//! heartbeat-renewed lease, record the outcome, and only then ack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::lapin::message::Delivery;
use broker::{Batch, OutboxRelay, Settle};
use chrono::Utc;
use job_model::{
    AttemptOutcome, AttemptOutputs, ExecutionEvent, JobEnvelope, JobMetadata, JobPriority, RetryPolicy, StageTiming,
    Topology,
};
use job_store::lifecycle::{self, AttemptRecord, ClaimOutcome};
use job_store::outbox::OutboxRow;
use job_store::{ConnectionCache, StoreError};
use object_store::ObjectStore;
use pipeline::{Document, EarlierResults, Pipeline, PipelineRun, StageError, StageStatus};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::messages;
use crate::metrics::{DropLabels, OutcomeLabels, StageLabels, WorkerMetrics};
use crate::outcomes::{OutcomeWriter, RecordError};

/// What every job task shares.
pub struct Executor {
    /// For the heartbeat and the release of a lease at shutdown.
    pub pool: PgPool,
    /// For the claim: a job's statements reuse connections without the
    /// pool's ping on each release (`job_store::connections`).
    pub connections: ConnectionCache,
    /// Earlier results, for the duplicate rule (the job store).
    pub earlier: Arc<dyn EarlierResults>,
    pub blobs: Arc<dyn ObjectStore>,
    pub pipeline: Arc<Pipeline>,
    pub topology: Topology,
    pub retry_policy: RetryPolicy,
    pub relay: OutboxRelay,
    pub worker_id: String,
    pub lease: Duration,
    pub max_crashes: i32,
    pub metrics: WorkerMetrics,
    /// Records finished attempts, several per statement under load.
    pub outcomes: OutcomeWriter,
}

#[async_trait::async_trait]
impl broker::Handler for Executor {
    /// Handles one delivery (the worker consumes one at a time per slot).
    /// `abort` is cancelled when the shutdown grace period is over: the job
    /// is then given back, not finished.
    async fn handle(&self, batch: &Batch, abort: &CancellationToken) -> Settle {
        let priority = JobPriority::ALL[batch.queue];
        let delivery = &batch.deliveries[0];
        self.metrics.in_flight.inc();
        // One CONSUMER span per delivery (so per attempt), continuing the
        // trace the message carries (OpenTelemetry messaging conventions).
        let queue = self.topology.job_queue(priority);
        let span = broker::spans::consumer_tracing_span(delivery, &queue);
        span.record("docflow.priority", priority.as_str());
        let parent = broker::spans::delivery_context(delivery);
        let settle = self.process(priority, delivery, abort, &parent).instrument(span).await;
        self.metrics.in_flight.dec();
        settle
    }
}

impl Executor {
    async fn process(
        &self,
        priority: JobPriority,
        delivery: &Delivery,
        abort: &CancellationToken,
        producer: &opentelemetry::Context,
    ) -> Settle {
        let envelope = match JobEnvelope::decode(&delivery.data) {
            Ok(envelope) => envelope,
            Err(reason) => {
                tracing::Span::current().record("otel.status_code", "ERROR");
                return self.poison(reason.code(), &reason.to_string());
            }
        };
        let job_id = envelope.job_id();
        record_queue_wait(producer, &self.topology.job_queue(priority), envelope.enqueued_at, job_id);
        let current = tracing::Span::current();
        current.record("messaging.message.id", job_id.to_string());
        current.record("docflow.job_id", job_id.to_string());
        let sent_for = broker::header(delivery, job_model::message::headers::ATTEMPT).and_then(|a| a.parse().ok());
        let claim = self.with_db_retry(abort, || async {
            let mut connection = self.connections.acquire().await?;
            let claimed = lifecycle::claim(&mut connection, job_id, &self.worker_id, self.lease, sent_for).await;
            connection.keep_if_ok(claimed)
        });
        let Some(claim) = claim.await else {
            return Settle::Requeue;
        };
        match claim {
            ClaimOutcome::Claimed(claimed) => {
                if claimed.recovered_from_crash {
                    self.metrics.crashes_recovered.inc();
                    tracing::warn!(%job_id, crashes = claimed.job.crash_count, "claimed a job whose worker died");
                }
                if claimed.job.crash_count >= self.max_crashes {
                    return self.quarantine(claimed.job, abort).await;
                }
                self.run_attempt(claimed.job, abort).await
            }
            ClaimOutcome::NotFound => self.poison("unknown_job", &format!("no job {job_id} in the database")),
            ClaimOutcome::AlreadyFinished(status) => {
                tracing::info!(%job_id, %status, ?priority, "duplicate delivery of a finished job; dropped");
                self.metrics.dropped.get_or_create(&DropLabels { reason: "duplicate" }).inc();
                Settle::Ack
            }
            ClaimOutcome::Stale { job_attempt } => {
                // The job's own retry message is still waiting in its tier.
                tracing::info!(%job_id, ?sent_for, job_attempt, "stale copy of a retrying job's message; dropped");
                self.metrics.dropped.get_or_create(&DropLabels { reason: "stale" }).inc();
                Settle::Ack
            }
            ClaimOutcome::HeldElsewhere => {
                // The holder is alive and renewing its lease; if it dies, the
                // reaper queues the job again once the lease expires.
                tracing::info!(%job_id, "duplicate delivery of a running job; dropped");
                self.metrics.dropped.get_or_create(&DropLabels { reason: "duplicate" }).inc();
                Settle::Ack
            }
        }
    }

    async fn run_attempt(&self, job: JobMetadata, abort: &CancellationToken) -> Settle {
        tracing::Span::current().record("docflow.attempt", job.attempt);
        let started_at = Utc::now();
        let clock = Instant::now();
        let lost = CancellationToken::new();
        let heartbeat =
            tokio::spawn(heartbeat(self.pool.clone(), job.job_id, self.worker_id.clone(), self.lease, lost.clone()));

        let mut ctx = self.pipeline.context(
            Document {
                job_id: job.job_id,
                document_id: job.document.document_id.clone(),
                filename: job.document.filename.clone(),
                blob_path: job.document.blob_path.clone(),
                file_size: job.document.file_size,
                attempt: job.attempt,
            },
            self.earlier.clone(),
            self.blobs.clone(),
        );
        let run = tokio::select! {
            run = self.pipeline.run(&mut ctx) => Some(run),
            _ = abort.cancelled() => None,
            _ = lost.cancelled() => None,
        };
        heartbeat.abort();

        let Some(run) = run else {
            if lost.is_cancelled() {
                return self.lease_lost(&job, "mid-attempt");
            }
            // Shutdown grace is over: give the job back without counting a crash.
            let _ = lifecycle::release_lease(&self.pool, job.job_id, &self.worker_id).await;
            return Settle::Requeue;
        };
        let record = self.attempt_record(&job, &run, ctx.outputs(), started_at, clock.elapsed());
        self.commit(&job, record, abort).await
    }

    /// Writes the attempt's outcome; acks only once it is committed.
    async fn commit(&self, job: &JobMetadata, record: AttemptRecord, abort: &CancellationToken) -> Settle {
        let outcome = record.outcome;
        let record = Arc::new(record);
        let committed = self.with_db_retry(abort, || self.outcomes.record(record.clone())).await;
        match committed {
            Some(Some(recorded)) => {
                let written = recorded.outbox_ids.iter().zip(&record.messages);
                self.relay.hand_over(written.map(|(id, m)| OutboxRow::handed(*id, m.clone())).collect());
                let span = tracing::Span::current();
                span.record("docflow.outcome", outcome.as_str());
                span.record("otel.status_code", if outcome == AttemptOutcome::Completed { "OK" } else { "ERROR" });
                let labels = OutcomeLabels { outcome: outcome.as_str(), priority: job.document.priority.routing_key() };
                self.metrics.attempts.get_or_create(&labels).inc();
                tracing::info!(job_id = %job.job_id, attempt = job.attempt, outcome = outcome.as_str(), "attempt recorded");
                Settle::Ack
            }
            Some(None) => self.lease_lost(job, "at its outcome"),
            None => Settle::Requeue,
        }
    }

    /// The job is no longer this attempt's: the reaper gave it to another
    /// worker (whose own message then runs it), or a Postgres crash lost
    /// the claim, which commits asynchronously (`lifecycle::claim`), and the
    /// job is back in QUEUED or RETRYING with this delivery the only message
    /// that will run it. So the delivery goes back to its queue rather than
    /// being acked: its redelivery claims the job afresh, or finds it running
    /// or finished elsewhere and is dropped as a duplicate.
    fn lease_lost(&self, job: &JobMetadata, when: &str) -> Settle {
        tracing::warn!(job_id = %job.job_id, attempt = job.attempt,
            "the job's lease was lost {when} (rescued by the reaper, or a claim lost in a database crash); \
             giving the delivery back");
        self.metrics.dropped.get_or_create(&DropLabels { reason: "lease_lost" }).inc();
        Settle::Requeue
    }

    /// Turns a pipeline run into the attempt's record and its messages.
    fn attempt_record(
        &self,
        job: &JobMetadata,
        run: &PipelineRun,
        outputs: AttemptOutputs,
        started_at: chrono::DateTime<Utc>,
        elapsed: Duration,
    ) -> AttemptRecord {
        // Stages skipped after a failure did not run: nothing to time.
        let stages: Vec<StageTiming> = run
            .outcomes
            .iter()
            .filter(|o| o.status != StageStatus::Skipped)
            .map(|o| {
                let status = if o.status == StageStatus::Succeeded { "succeeded" } else { "failed" };
                self.metrics
                    .stage_duration
                    .get_or_create(&StageLabels {
                        stage: o.stage.to_string(),
                        status,
                        priority: job.document.priority.routing_key(),
                    })
                    .observe(o.duration.as_secs_f64());
                StageTiming {
                    seq: o.seq as i16,
                    stage: o.stage.to_string(),
                    status: status.to_owned(),
                    started_at: o.started_at,
                    offset_ms: (o.started_at - started_at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                    duration_ms: o.duration.as_secs_f64() * 1000.0,
                    items_processed: o.items_processed as i64,
                    bytes_processed: o.bytes_processed as i64,
                    error: o.error.as_ref().map(|e| e.to_string()),
                }
            })
            .collect();

        let mut messages_out = Vec::new();
        let (outcome, error_message, error_stage, detail) = match &run.result {
            Ok(()) => (AttemptOutcome::Completed, None, None, serde_json::json!({"attempt": job.attempt})),
            Err((index, error)) => {
                let stage = run.outcomes.get(*index).map(|o| o.stage.to_string());
                let message = error.to_string();
                let (outcome, detail) = self.decide(job, error);
                match outcome {
                    AttemptOutcome::Retrying => {
                        let (retry, delay) =
                            messages::retry(&self.topology, &self.retry_policy, job, (job.retry_count + 1) as u32);
                        messages_out.push(retry);
                        let detail = serde_json::json!({"attempt": job.attempt, "error_kind": error.kind(),
                            "retry": job.retry_count + 1, "backoff_ms": delay.as_millis() as u64});
                        (outcome, Some(message), stage, detail)
                    }
                    AttemptOutcome::Dlq => {
                        messages_out.push(messages::dead_letter(
                            &self.topology,
                            job,
                            detail,
                            &message,
                            stage.as_deref(),
                        ));
                        let detail =
                            serde_json::json!({"attempt": job.attempt, "error_kind": error.kind(), "reason": detail});
                        (outcome, Some(message), stage, detail)
                    }
                    _ => {
                        let detail = serde_json::json!({"attempt": job.attempt, "error_kind": error.kind()});
                        (outcome, Some(message), stage, detail)
                    }
                }
            }
        };
        self.metrics
            .job_duration
            .get_or_create(&OutcomeLabels { outcome: outcome.as_str(), priority: job.document.priority.routing_key() })
            .observe(elapsed.as_secs_f64());

        let event = ExecutionEvent {
            error_message: error_message.clone(),
            error_stage: error_stage.clone(),
            stages: stages.clone(),
            ..ExecutionEvent::for_attempt(job, &self.worker_id, outcome, started_at, elapsed)
        };
        messages_out.push(messages::execution_event(&self.topology, &event));
        AttemptRecord {
            job_id: job.job_id,
            attempt: job.attempt,
            outcome,
            error_message,
            error_stage,
            stages,
            messages: messages_out,
            outputs,
            detail,
        }
    }

    /// Permanent errors fail now; retryable ones retry while the budget
    /// lasts, then dead-letter; a panic is a bug, parked for an admin.
    fn decide(&self, job: &JobMetadata, error: &StageError) -> (AttemptOutcome, &'static str) {
        if error.kind() == "panic" {
            return (AttemptOutcome::Dlq, "stage_panicked");
        }
        match error {
            StageError::Permanent { .. } => (AttemptOutcome::Failed, "permanent_error"),
            StageError::Retryable { .. } if job.retry_count < job.max_retries => {
                (AttemptOutcome::Retrying, "retryable_error")
            }
            StageError::Retryable { .. } => (AttemptOutcome::Dlq, "retries_exhausted"),
        }
    }

    /// A job that killed its worker `max_crashes` times goes to the DLQ
    /// instead of taking down the next one.
    async fn quarantine(&self, job: JobMetadata, abort: &CancellationToken) -> Settle {
        let error = format!("worker died {} times while processing this job; quarantined as poison", job.crash_count);
        tracing::error!(job_id = %job.job_id, "{error}");
        let event = ExecutionEvent {
            error_message: Some(error.clone()),
            ..ExecutionEvent::for_attempt(&job, &self.worker_id, AttemptOutcome::Dlq, Utc::now(), Duration::ZERO)
        };
        let record = AttemptRecord {
            job_id: job.job_id,
            attempt: job.attempt,
            outcome: AttemptOutcome::Dlq,
            error_message: Some(error.clone()),
            error_stage: None,
            stages: Vec::new(),
            outputs: AttemptOutputs::default(),
            messages: vec![
                messages::dead_letter(&self.topology, &job, "poison_crashes", &error, None),
                messages::execution_event(&self.topology, &event),
            ],
            detail: serde_json::json!({"attempt": job.attempt, "reason": "poison_crashes", "crashes": job.crash_count}),
        };
        self.commit(&job, record, abort).await
    }

    /// A message no job can come of goes to `jobs.dlq` as it is, with the
    /// reason in its headers; acked only once the broker confirmed the copy.
    fn poison(&self, code: &str, reason: &str) -> Settle {
        tracing::warn!(code, reason, "poison message; dead-lettering it");
        self.metrics.dropped.get_or_create(&DropLabels { reason: "poison" }).inc();
        Settle::DeadLetter { reason: code.to_owned(), error: reason.to_owned() }
    }

    /// Runs a database step, waiting out outages with backoff (holding the
    /// delivery rather than cycling it through the broker). None if
    /// shutdown's grace ran out first, or if the step failed in a way waiting
    /// cannot mend (a bug: logged, and the delivery goes back to its queue,
    /// where the quorum delivery limit is the backstop).
    async fn with_db_retry<T, E, F, Fut>(&self, abort: &CancellationToken, step: F) -> Option<T>
    where
        E: DatabaseError,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        match broker::backoff::retry_transient(abort, "database step", E::is_unavailable, step).await? {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, "database step failed for good; giving the delivery back");
                None
            }
        }
    }
}

/// A database step's error, by whether waiting can mend it: a store call's
/// own, or the outcome writer's account of one.
trait DatabaseError: std::fmt::Display {
    fn is_unavailable(&self) -> bool;
}

impl DatabaseError for StoreError {
    fn is_unavailable(&self) -> bool {
        StoreError::is_unavailable(self)
    }
}

impl DatabaseError for RecordError {
    fn is_unavailable(&self) -> bool {
        RecordError::is_unavailable(self)
    }
}

/// The time a message spent on its queue (or in a retry tier) before this
/// delivery, as a span of its own beside the work, so wait and work are
/// told apart in a trace.
fn record_queue_wait(
    producer: &opentelemetry::Context,
    queue: &str,
    enqueued_at: chrono::DateTime<Utc>,
    job_id: uuid::Uuid,
) {
    use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
    let tracer = opentelemetry::global::tracer("docflow");
    let start: std::time::SystemTime = enqueued_at.into();
    let mut span = tracer
        .span_builder(format!("queue wait {queue}"))
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes([
            opentelemetry::KeyValue::new("docflow.queue", queue.to_owned()),
            opentelemetry::KeyValue::new("docflow.job_id", job_id.to_string()),
        ])
        .start_with_context(&tracer, producer);
    span.end();
}

/// Renews the lease every third of its length; cancels `lost` when it is
/// gone, or when no renewal has succeeded for a whole lease period: by then
/// the reaper may have handed the job to another worker, and this attempt
/// stops rather than race its successor.
async fn heartbeat(pool: PgPool, job_id: uuid::Uuid, worker: String, lease: Duration, lost: CancellationToken) {
    let mut interval = tokio::time::interval(lease / 3);
    interval.tick().await;
    let mut renewed = Instant::now();
    loop {
        interval.tick().await;
        match lifecycle::renew_lease(&pool, job_id, &worker, lease).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                lost.cancel();
                return;
            }
            // A database blip: keep trying while the lease lasts.
            Err(error) if renewed.elapsed() < lease => tracing::warn!(%error, %job_id, "lease renewal failed"),
            Err(error) => {
                tracing::warn!(%error, %job_id, "no lease renewal for a whole lease period; stopping the attempt");
                lost.cancel();
                return;
            }
        }
    }
}
