//! The `jobs` row as Postgres returns it, and its one conversion into the
//! model's [`JobMetadata`]. Every query that returns jobs selects the same
//! columns through [`query_jobs!`], so the list is written once and still
//! checked against the schema at build time.

use chrono::{DateTime, Utc};
use job_model::{DocumentRef, JobMetadata, JobPriority, JobStatus};
use uuid::Uuid;

use crate::error::StoreError;

/// `sqlx::query_as!(JobRow, ..)` with the job columns between two literal
/// halves of the query: the macro sees one literal (concatenated with `+`),
/// so the whole statement is checked like any other. The `!`/`?` suffixes
/// state nullability where Postgres cannot infer it (CTEs, RETURNING).
macro_rules! query_jobs {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        $crate::row::query_jobs!(crashed = "NULL::bool", outbox_id = "NULL::int8"; $before, $after $(, $arg)*)
    };
    (crashed = $crashed:literal; $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        $crate::row::query_jobs!(crashed = $crashed, outbox_id = "NULL::int8"; $before, $after $(, $arg)*)
    };
    (outbox_id = $outbox_id:literal; $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        $crate::row::query_jobs!(crashed = "NULL::bool", outbox_id = $outbox_id; $before, $after $(, $arg)*)
    };
    (crashed = $crashed:literal, outbox_id = $outbox_id:literal; $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::row::JobRow,
            $before
                + r#"job_id AS "job_id!", document_id AS "document_id!", filename AS "filename!",
                  blob_path AS "blob_path!", file_size AS "file_size!", priority AS "priority!", tags AS "tags!",
                  status AS "status!", attempt AS "attempt!", retry_count AS "retry_count!",
                  max_retries AS "max_retries!", crash_count AS "crash_count!", error_message AS "error_message?",
                  error_stage AS "error_stage?", trace_id AS "trace_id?", traceparent AS "traceparent?",
                  created_at AS "created_at!", updated_at AS "updated_at!", started_at AS "started_at?",
                  completed_at AS "completed_at?", dlq_at AS "dlq_at?", "#
                + $crashed
                + r#" AS "crashed?", "#
                + $outbox_id
                + r#" AS "outbox_id?" "#
                + $after
            $(, $arg)*
        )
    };
}
pub(crate) use query_jobs;

#[derive(Debug, Clone)]
pub struct JobRow {
    pub job_id: Uuid,
    pub document_id: String,
    pub filename: String,
    pub blob_path: String,
    pub file_size: i64,
    pub priority: i16,
    pub tags: serde_json::Value,
    pub status: String,
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
    /// Whether a claim took the job from a worker that died holding it;
    /// NULL for every other statement.
    pub crashed: Option<bool>,
    /// The outbox row a submission wrote with its job, for a writer that
    /// publishes it itself; NULL for every other statement.
    pub outbox_id: Option<i64>,
}

impl TryFrom<JobRow> for JobMetadata {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        let priority = JobPriority::from_value(row.priority)
            .ok_or_else(|| StoreError::invariant(format!("job {} has priority {}", row.job_id, row.priority)))?;
        let status: JobStatus = row
            .status
            .parse()
            .map_err(|e| StoreError::invariant(format!("job {} has status {:?}: {e}", row.job_id, row.status)))?;
        let tags = serde_json::from_value(row.tags).map_err(|e| {
            StoreError::invariant(format!("job {} has tags that are not a string map: {e}", row.job_id))
        })?;
        Ok(JobMetadata {
            job_id: row.job_id,
            document: DocumentRef {
                document_id: row.document_id,
                filename: row.filename,
                blob_path: row.blob_path,
                file_size: row.file_size,
                priority,
                tags,
            },
            status,
            attempt: row.attempt,
            retry_count: row.retry_count,
            max_retries: row.max_retries,
            crash_count: row.crash_count,
            error_message: row.error_message,
            error_stage: row.error_stage,
            trace_id: row.trace_id,
            traceparent: row.traceparent,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            dlq_at: row.dlq_at,
        })
    }
}

/// Converts a fetched row (if any) into the model.
pub fn job(row: JobRow) -> Result<JobMetadata, StoreError> {
    row.try_into()
}

pub(crate) fn jobs(rows: Vec<JobRow>) -> Result<Vec<JobMetadata>, StoreError> {
    rows.into_iter().map(JobMetadata::try_from).collect()
}
