//! The messages a worker sends, all through the outbox: a retry into its
//! tier, a dead letter, the per-attempt execution event, and a fresh job
//! message for a rescued job. Each is built from the job row, never by
//! copying the delivery, so broker headers such as `x-death` are not carried
//! into republished messages (RabbitMQ drops messages that come back
//! through a dead-letter cycle carrying them: see "Dead Lettering", cycles).

use std::time::Duration;

use job_model::message::{headers, job_headers};
use job_model::outbox::OutboxMessage;
use job_model::{ExecutionEvent, JobEnvelope, JobMetadata, ProcessDocument, RetryPolicy, Topology};
use rand::Rng;

/// Job headers plus the current span's trace context, so whatever consumes
/// the message continues this attempt's trace.
fn traced_headers(job_id: uuid::Uuid, attempt: i32) -> std::collections::BTreeMap<String, String> {
    let mut headers = job_headers(job_id, attempt);
    headers.extend(telemetry::current_context_headers());
    headers
}

/// The job's message again, for its next attempt after `delay` (jittered
/// down by up to a fifth, so retries scheduled together spread out).
pub fn retry(
    topology: &Topology,
    policy: &RetryPolicy,
    job: &JobMetadata,
    retry_number: u32,
) -> (OutboxMessage, Duration) {
    let tier = policy.tier_for(retry_number);
    let jitter = rand::rng().random_range(0.8..=1.0);
    let delay = tier.mul_f64(jitter);
    let mut message = OutboxMessage::new(
        topology.retry_exchange(tier),
        job.priority.routing_key().to_owned(),
        JobEnvelope::process_document(ProcessDocument::from(job)).encode(),
        traced_headers(job.job_id, job.attempt + 1),
    );
    message.expiration = Some(delay);
    (message, delay)
}

/// A job message again, on its priority queue (a job rescued from a dead
/// worker), continuing the trace of the job's submission.
pub fn requeue(topology: &Topology, job: &JobMetadata) -> OutboxMessage {
    let mut headers = job_headers(job.job_id, job.attempt + 1);
    if let Some(traceparent) = &job.traceparent {
        headers.insert(headers::TRACEPARENT.to_owned(), traceparent.clone());
    }
    OutboxMessage::new(
        topology.jobs_exchange(),
        job.priority.routing_key().to_owned(),
        JobEnvelope::process_document(ProcessDocument::from(job)).encode(),
        headers,
    )
}

/// The job's message parked on `jobs.dlq`, with why.
pub fn dead_letter(
    topology: &Topology,
    job: &JobMetadata,
    reason: &str,
    error: &str,
    stage: Option<&str>,
) -> OutboxMessage {
    let mut h = traced_headers(job.job_id, job.attempt);
    h.insert(headers::DLQ_REASON.to_owned(), reason.to_owned());
    h.insert(headers::ERROR.to_owned(), error.to_owned());
    if let Some(stage) = stage {
        h.insert(headers::ERROR_STAGE.to_owned(), stage.to_owned());
    }
    OutboxMessage::new(
        topology.dlq_exchange(),
        job.priority.routing_key().to_owned(),
        JobEnvelope::process_document(ProcessDocument::from(job)).encode(),
        h,
    )
}

pub fn execution_event(topology: &Topology, event: &ExecutionEvent) -> OutboxMessage {
    OutboxMessage::new(
        topology.events_exchange(),
        event.routing_key(),
        serde_json::to_vec(event).expect("events serialise"),
        traced_headers(event.job_id, event.attempt),
    )
}
