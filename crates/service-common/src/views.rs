//! Views the HTTP services share.

use chrono::{DateTime, Utc};
use job_model::{DocumentRef, JobMetadata, JobStatus};
use serde::Serialize;
use uuid::Uuid;

/// A job as every HTTP API shows it (the seed's shape: its status is
/// `job_status`, so that a response's own `status` can say "success").
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub job_id: Uuid,
    #[serde(flatten)]
    pub document: DocumentRef,
    pub job_status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub dlq_at: Option<DateTime<Utc>>,
    /// Attempts started so far.
    pub attempt: i32,
    pub retry_count: i32,
    pub max_retries: i32,
    /// Attempts whose worker died holding the job.
    pub crash_count: i32,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    /// Open this trace in Jaeger to see the job across every process.
    pub trace_id: Option<String>,
}

impl From<JobMetadata> for JobView {
    fn from(j: JobMetadata) -> Self {
        JobView {
            job_id: j.job_id,
            document: j.document,
            job_status: j.status,
            created_at: j.created_at,
            updated_at: j.updated_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
            dlq_at: j.dlq_at,
            attempt: j.attempt,
            retry_count: j.retry_count,
            max_retries: j.max_retries,
            crash_count: j.crash_count,
            error_message: j.error_message,
            error_stage: j.error_stage,
            trace_id: j.trace_id,
        }
    }
}
