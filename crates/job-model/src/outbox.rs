//! What goes into the outbox, and the one builder of a job's message.
//!
//! Every job message (first submission, retry, rescue, admin replay, dead
//! letter) is built by [`OutboxMessage::for_job`] from the job row, never by
//! copying a delivery, so broker headers such as `x-death` are not carried
//! into republished messages (RabbitMQ drops messages that come back through
//! a dead-letter cycle carrying them: see "Dead Lettering", cycles).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::message::{JobEnvelope, ProcessDocument, headers, job_headers};
use crate::{ExecutionEvent, Topology};

/// A message committed to the outbox, published later by the relay.
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

/// Where a job's message goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobRoute<'a> {
    /// The job's priority queue: a submission, a rescue, an admin retry.
    Queue,
    /// A retry tier (`tier` is its TTL), released after `delay` (at most the
    /// tier's TTL: the jitter).
    Retry { tier: Duration, delay: Duration },
    /// `jobs.dlq`, saying why.
    DeadLetter { reason: &'a str, error: &'a str, stage: Option<&'a str> },
}

impl OutboxMessage {
    pub fn new(exchange: String, routing_key: String, payload: Vec<u8>, headers: BTreeMap<String, String>) -> Self {
        OutboxMessage { exchange, routing_key, payload, headers, expiration: None }
    }

    /// The message of a job for `attempt`, routed by `route`, carrying
    /// `trace` (W3C trace context headers) so that whatever consumes it
    /// continues that trace.
    pub fn for_job(
        topology: &Topology,
        job: ProcessDocument,
        attempt: i32,
        route: JobRoute<'_>,
        trace: BTreeMap<String, String>,
    ) -> Self {
        let mut h = trace;
        h.extend(job_headers(job.job_id, attempt));
        let routing_key = job.document.priority.routing_key().to_owned();
        let payload = JobEnvelope::for_job(job).encode();
        match route {
            JobRoute::Queue => OutboxMessage::new(topology.jobs_exchange(), routing_key, payload, h),
            JobRoute::Retry { tier, delay } => OutboxMessage {
                expiration: Some(delay.min(tier)),
                ..OutboxMessage::new(topology.retry_exchange(tier), routing_key, payload, h)
            },
            JobRoute::DeadLetter { reason, error, stage } => {
                h.insert(headers::DLQ_REASON.to_owned(), reason.to_owned());
                h.insert(headers::ERROR.to_owned(), error.to_owned());
                if let Some(stage) = stage {
                    h.insert(headers::ERROR_STAGE.to_owned(), stage.to_owned());
                }
                OutboxMessage::new(topology.dlq_exchange(), routing_key, payload, h)
            }
        }
    }

    /// The execution event of one attempt, on `docflow.events`.
    pub fn execution_event(topology: &Topology, event: &ExecutionEvent, trace: BTreeMap<String, String>) -> Self {
        let mut h = trace;
        h.extend(job_headers(event.job_id, event.attempt));
        OutboxMessage::new(
            topology.events_exchange(),
            event.routing_key(),
            serde_json::to_vec(event).expect("events serialise"),
            h,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DocumentRef, JobPriority};

    fn document() -> ProcessDocument {
        ProcessDocument {
            job_id: uuid::Uuid::now_v7(),
            document: DocumentRef {
                document_id: "doc".into(),
                filename: "a.pdf".into(),
                blob_path: "in/a.pdf".into(),
                file_size: 10,
                priority: JobPriority::Low,
                tags: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn routes_decide_exchange_key_headers_and_ttl() {
        let t = Topology::new("ns");
        let trace = BTreeMap::from([(headers::TRACEPARENT.to_owned(), "00-abc-def-01".to_owned())]);
        let queued = OutboxMessage::for_job(&t, document(), 1, JobRoute::Queue, trace.clone());
        assert_eq!((queued.exchange.as_str(), queued.routing_key.as_str()), ("ns.docflow.jobs", "low"));
        assert_eq!(queued.headers[headers::ATTEMPT], "1");
        assert_eq!(queued.headers[headers::TRACEPARENT], "00-abc-def-01");
        assert!(JobEnvelope::decode(&queued.payload).is_ok());

        let tier = Duration::from_secs(4);
        let retry =
            OutboxMessage::for_job(&t, document(), 2, JobRoute::Retry { tier, delay: Duration::from_secs(9) }, trace);
        assert_eq!(retry.exchange, t.retry_exchange(tier));
        assert_eq!(retry.expiration, Some(tier), "never longer than the tier's TTL");

        let route = JobRoute::DeadLetter { reason: "retries_exhausted", error: "boom", stage: Some("upload") };
        let dead = OutboxMessage::for_job(&t, document(), 4, route, BTreeMap::new());
        assert_eq!(dead.exchange, t.dlq_exchange());
        assert_eq!(dead.headers[headers::DLQ_REASON], "retries_exhausted");
        assert_eq!(dead.headers[headers::ERROR_STAGE], "upload");
    }
}
