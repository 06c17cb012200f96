//! A job as stored in Postgres, and what it takes to create one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{JobPriority, JobStatus};

/// A job row. Read through [`crate::db`]; the status API renders it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct JobMetadata {
    pub job_id: Uuid,
    pub document_id: String,
    pub filename: String,
    pub blob_path: String,
    pub file_size: i64,
    #[sqlx(try_from = "i16")]
    pub priority: JobPriority,
    #[sqlx(json)]
    pub tags: BTreeMap<String, String>,
    #[sqlx(try_from = "String")]
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

/// The columns [`JobMetadata`] reads, for every query that returns jobs.
pub(crate) const JOB_COLUMNS: &str = "job_id, document_id, filename, blob_path, file_size, priority, tags, status, \
     attempt, retry_count, max_retries, crash_count, error_message, error_stage, trace_id, traceparent, created_at, \
     updated_at, started_at, completed_at, dlq_at";

/// A validated request to create a job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub job_id: Uuid,
    pub document_id: String,
    pub filename: String,
    pub blob_path: String,
    pub file_size: i64,
    pub priority: JobPriority,
    pub tags: BTreeMap<String, String>,
    pub max_retries: i32,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the normalised request; equal hashes mean "the same request".
    pub request_hash: [u8; 32],
    pub trace_id: Option<String>,
    /// W3C `traceparent` of the submission, so a replay continues its trace.
    pub traceparent: Option<String>,
}

impl NewJob {
    pub(crate) fn tags_json(&self) -> Json<&BTreeMap<String, String>> {
        Json(&self.tags)
    }
}

/// One stage of one attempt, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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

impl TryFrom<i16> for JobPriority {
    type Error = String;

    fn try_from(value: i16) -> Result<Self, Self::Error> {
        JobPriority::from_value(value).ok_or_else(|| format!("invalid stored priority {value}"))
    }
}

impl TryFrom<String> for JobStatus {
    type Error = crate::status::UnknownStatus;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}
