//! Messages on the broker. Bodies are JSON with a `schema_version` and a
//! `type` tag, so a consumer can tell "a newer producer" from "garbage" and
//! dead-letter either with a reason instead of crashing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DocumentRef, JobPriority};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// AMQP header names. `traceparent`/`tracestate` are W3C trace context.
pub mod headers {
    pub const JOB_ID: &str = "x-job-id";
    pub const ATTEMPT: &str = "x-attempt";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    /// On dead-lettered messages: why (a stable code), the error and its stage.
    pub const DLQ_REASON: &str = "x-dlq-reason";
    pub const ERROR: &str = "x-error";
    pub const ERROR_STAGE: &str = "x-error-stage";
}

/// The message that asks a worker to process one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    pub schema_version: u32,
    #[serde(flatten)]
    pub body: JobMessage,
    pub enqueued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobMessage {
    ProcessDocument(ProcessDocument),
}

/// What a worker needs to find the job; Postgres stays the source of truth
/// for its status, so the copy here is for logs and for poison triage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessDocument {
    pub job_id: Uuid,
    #[serde(flatten)]
    pub document: DocumentRef,
}

/// Why a message body was refused; becomes the dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoisonReason {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("missing or non-numeric schema_version")]
    NoSchemaVersion,
    #[error("unsupported schema_version {0} (this build understands {SCHEMA_VERSION})")]
    UnsupportedSchemaVersion(u64),
    #[error("body does not match schema_version {SCHEMA_VERSION}: {0}")]
    Malformed(String),
}

impl PoisonReason {
    /// A stable machine-readable code for the DLQ's `reason` column.
    pub fn code(&self) -> &'static str {
        match self {
            PoisonReason::NotJson(_) => "not_json",
            PoisonReason::NoSchemaVersion => "no_schema_version",
            PoisonReason::UnsupportedSchemaVersion(_) => "unsupported_schema_version",
            PoisonReason::Malformed(_) => "malformed",
        }
    }
}

impl JobEnvelope {
    /// The one way to build a job's message body.
    pub fn for_job(body: ProcessDocument) -> Self {
        JobEnvelope { schema_version: SCHEMA_VERSION, body: JobMessage::ProcessDocument(body), enqueued_at: Utc::now() }
    }

    pub fn job_id(&self) -> Uuid {
        match &self.body {
            JobMessage::ProcessDocument(p) => p.job_id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a JobEnvelope always serialises")
    }

    /// Decodes a body, checking the schema version before the shape so that a
    /// message from a newer producer is reported as such, not as garbage.
    pub fn decode(bytes: &[u8]) -> Result<Self, PoisonReason> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PoisonReason::NotJson(e.to_string()))?;
        let version = value.get("schema_version").and_then(|v| v.as_u64()).ok_or(PoisonReason::NoSchemaVersion)?;
        if version != u64::from(SCHEMA_VERSION) {
            return Err(PoisonReason::UnsupportedSchemaVersion(version));
        }
        serde_json::from_value(value).map_err(|e| PoisonReason::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JobEnvelope {
        JobEnvelope::for_job(ProcessDocument {
            job_id: Uuid::now_v7(),
            document: DocumentRef {
                document_id: "doc-1".into(),
                filename: "invoice.pdf".into(),
                blob_path: "in/invoice.pdf".into(),
                file_size: 1234,
                priority: JobPriority::High,
                tags: BTreeMap::from([("customer".into(), "acme".into())]),
            },
        })
    }

    #[test]
    fn round_trips_with_version_and_type_tag() {
        let env = sample();
        let bytes = env.encode();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["type"], "process_document");
        assert_eq!(json["priority"], "HIGH");
        assert_eq!(JobEnvelope::decode(&bytes).unwrap(), env);
    }

    #[test]
    fn refuses_garbage_with_a_reason() {
        assert_eq!(JobEnvelope::decode(b"\xff\x00").unwrap_err().code(), "not_json");
        assert_eq!(JobEnvelope::decode(b"{}").unwrap_err(), PoisonReason::NoSchemaVersion);
        let mut json = serde_json::to_value(sample()).unwrap();
        json["schema_version"] = 99.into();
        assert_eq!(
            JobEnvelope::decode(&serde_json::to_vec(&json).unwrap()).unwrap_err(),
            PoisonReason::UnsupportedSchemaVersion(99)
        );
        json["schema_version"] = 1.into();
        json["type"] = "launch_rockets".into();
        assert_eq!(JobEnvelope::decode(&serde_json::to_vec(&json).unwrap()).unwrap_err().code(), "malformed");
    }

    #[test]
    fn tags_are_optional() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json.as_object_mut().unwrap().remove("tags");
        let env = JobEnvelope::decode(&serde_json::to_vec(&json).unwrap()).unwrap();
        let JobMessage::ProcessDocument(p) = env.body;
        assert!(p.document.tags.is_empty());
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Completed,
    /// A permanent error: the document is unusable.
    Failed,
    /// A retryable error with retries left.
    Retrying,
    /// A retryable error with none left, or a poison job.
    Dlq,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Retrying => "retrying",
            AttemptOutcome::Dlq => "dlq",
        }
    }

    /// The job status this outcome leaves behind.
    pub fn status(self) -> crate::JobStatus {
        match self {
            AttemptOutcome::Completed => crate::JobStatus::Completed,
            AttemptOutcome::Failed => crate::JobStatus::Failed,
            AttemptOutcome::Retrying => crate::JobStatus::Retrying,
            AttemptOutcome::Dlq => crate::JobStatus::Dlq,
        }
    }
}

/// One stage of one attempt, as timed by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageTiming {
    pub seq: i16,
    pub stage: String,
    /// succeeded or failed.
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// Start, relative to the attempt's start.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub items_processed: i64,
    pub bytes_processed: i64,
    pub error: Option<String>,
}

/// Published on `docflow.events` once per attempt (not once per stage), with
/// routing key `execution.<outcome>`; metrics-tracker consumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionEvent {
    pub schema_version: u32,
    pub job_id: Uuid,
    pub attempt: i32,
    pub document_id: String,
    pub priority: JobPriority,
    pub outcome: AttemptOutcome,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    pub worker_id: String,
    /// When the job was submitted; with `started_at` it gives the queue wait.
    pub submitted_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub queue_wait_ms: f64,
    pub total_duration_ms: f64,
    pub stages: Vec<StageTiming>,
    pub trace_id: Option<String>,
}

impl ExecutionEvent {
    /// The event of one attempt of `job` that started at `started_at` and
    /// ran for `elapsed`; errors and stages are for the caller to fill in.
    pub fn for_attempt(
        job: &crate::JobMetadata,
        worker_id: &str,
        outcome: AttemptOutcome,
        started_at: DateTime<Utc>,
        elapsed: std::time::Duration,
    ) -> Self {
        ExecutionEvent {
            schema_version: SCHEMA_VERSION,
            job_id: job.job_id,
            attempt: job.attempt,
            document_id: job.document.document_id.clone(),
            priority: job.document.priority,
            outcome,
            error_message: None,
            error_stage: None,
            worker_id: worker_id.to_owned(),
            submitted_at: job.created_at,
            started_at,
            finished_at: started_at + chrono::Duration::from_std(elapsed).unwrap_or_default(),
            queue_wait_ms: (started_at - job.created_at).num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0,
            total_duration_ms: elapsed.as_secs_f64() * 1000.0,
            stages: Vec::new(),
            trace_id: job.trace_id.clone(),
        }
    }

    pub fn routing_key(&self) -> String {
        format!("execution.{}", self.outcome.as_str())
    }
}

impl From<&crate::JobMetadata> for ProcessDocument {
    fn from(job: &crate::JobMetadata) -> Self {
        ProcessDocument { job_id: job.job_id, document: job.document.clone() }
    }
}

impl From<&crate::NewJob> for ProcessDocument {
    fn from(job: &crate::NewJob) -> Self {
        ProcessDocument { job_id: job.job_id, document: job.document.clone() }
    }
}

/// The headers every job message carries.
pub fn job_headers(job_id: Uuid, attempt: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (headers::JOB_ID.to_owned(), job_id.to_string()),
        (headers::ATTEMPT.to_owned(), attempt.to_string()),
    ])
}
