//! A job as stored in Postgres, and what it takes to create one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{DocumentRef, JobStatus};

/// A job row, as the `job-store` crate reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobMetadata {
    pub job_id: Uuid,
    #[serde(flatten)]
    pub document: DocumentRef,
    pub status: JobStatus,
    pub attempt: i32,
    pub retry_count: i32,
    pub max_retries: i32,
    pub crash_count: i32,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    pub trace_id: Option<String>,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub dlq_at: Option<DateTime<Utc>>,
}

/// A validated request to create a job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub job_id: Uuid,
    pub document: DocumentRef,
    pub max_retries: i32,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the normalised request; equal hashes mean "the same request".
    pub request_hash: [u8; 32],
    pub trace_id: Option<String>,
    /// W3C `traceparent` of the submission, so a replay continues its trace.
    pub traceparent: Option<String>,
}

/// One stage of one attempt, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StageRecord {
    pub attempt: i32,
    pub stage: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub items_processed: Option<i64>,
    pub bytes_processed: Option<i64>,
    pub error: Option<String>,
}
