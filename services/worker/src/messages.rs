//! The messages a worker sends, all through the outbox: a retry into its
//! tier, a dead letter, the per-attempt execution event, and a fresh job
//! message for a rescued job. Each is built from the job row by
//! `OutboxMessage::for_job`, the one builder of job messages.

use std::collections::BTreeMap;
use std::time::Duration;

use job_model::message::headers;
use job_model::{ExecutionEvent, JobMetadata, JobRoute, OutboxMessage, ProcessDocument, RetryPolicy, Topology};
use rand::Rng;

/// The job's message again, for its next attempt after `delay` (jittered
/// down by up to a fifth, so retries scheduled together spread out),
/// continuing this attempt's trace.
pub fn retry(
    topology: &Topology,
    policy: &RetryPolicy,
    job: &JobMetadata,
    retry_number: u32,
) -> (OutboxMessage, Duration) {
    let tier = policy.tier_for(retry_number);
    let delay = tier.mul_f64(rand::rng().random_range(0.8..=1.0));
    let route = JobRoute::Retry { tier, delay };
    let message = OutboxMessage::for_job(
        topology,
        ProcessDocument::from(job),
        job.attempt + 1,
        route,
        telemetry::current_context_headers(),
    );
    (message, delay)
}

/// A job message again, on its priority queue (a job rescued from a dead
/// worker), continuing the trace of the job's submission.
pub fn requeue(topology: &Topology, job: &JobMetadata) -> OutboxMessage {
    let trace = job
        .traceparent
        .iter()
        .map(|traceparent| (headers::TRACEPARENT.to_owned(), traceparent.clone()))
        .collect::<BTreeMap<_, _>>();
    OutboxMessage::for_job(topology, ProcessDocument::from(job), job.attempt + 1, JobRoute::Queue, trace)
}

/// The job's message parked on `jobs.dlq`, with why.
pub fn dead_letter(
    topology: &Topology,
    job: &JobMetadata,
    reason: &str,
    error: &str,
    stage: Option<&str>,
) -> OutboxMessage {
    let route = JobRoute::DeadLetter { reason, error, stage };
    OutboxMessage::for_job(
        topology,
        ProcessDocument::from(job),
        job.attempt,
        route,
        telemetry::current_context_headers(),
    )
}

pub fn execution_event(topology: &Topology, event: &ExecutionEvent) -> OutboxMessage {
    OutboxMessage::execution_event(topology, event, telemetry::current_context_headers())
}
