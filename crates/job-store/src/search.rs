//! Job search for the web console: by job id, document id or one tag,
//! narrowed by status, priority and submission time, newest first with a
//! keyset cursor (UUIDv7 job ids sort by creation time, so `job_id < cursor`
//! is the next page and every page is one index range).

use chrono::{DateTime, Utc};
use job_model::{JobMetadata, JobPriority, JobStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::StoreResult;
use crate::row::{self, query_jobs};

/// What to look for; every part is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSearch {
    pub job_id: Option<Uuid>,
    pub document_id: Option<String>,
    /// One tag, `key` = `value` (tags are a string map on the job).
    pub tag: Option<(String, String)>,
    pub status: Option<JobStatus>,
    pub priority: Option<JobPriority>,
    /// Submitted at or after.
    pub since: Option<DateTime<Utc>>,
    /// Submitted before.
    pub until: Option<DateTime<Utc>>,
}

/// Newest first; `before` is the last job id of the previous page.
pub async fn search_jobs(
    pool: &PgPool,
    search: &JobSearch,
    before: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<JobMetadata>> {
    // `tags @> {"k": "v"}`: containment, so one tag matches whatever else
    // the job carries.
    let tag = search.tag.as_ref().map(|(k, v)| serde_json::json!({ k: v }));
    let rows = query_jobs!(
        "SELECT ",
        " FROM jobs \
         WHERE ($1::uuid IS NULL OR job_id = $1) \
           AND ($2::text IS NULL OR document_id = $2) \
           AND ($3::jsonb IS NULL OR tags @> $3) \
           AND ($4::text IS NULL OR status = $4) \
           AND ($5::smallint IS NULL OR priority = $5) \
           AND ($6::timestamptz IS NULL OR created_at >= $6) \
           AND ($7::timestamptz IS NULL OR created_at < $7) \
           AND ($8::uuid IS NULL OR job_id < $8) \
         ORDER BY job_id DESC LIMIT $9",
        search.job_id,
        search.document_id,
        tag,
        search.status.map(JobStatus::as_str),
        search.priority.map(JobPriority::value),
        search.since,
        search.until,
        before,
        limit,
    )
    .fetch_all(pool)
    .await?;
    row::jobs(rows)
}

/// One status change of a job, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A job's whole history (the console's status timeline).
pub async fn job_history(pool: &PgPool, job_id: Uuid) -> StoreResult<Vec<JobEvent>> {
    Ok(sqlx::query_as!(
        JobEvent,
        "SELECT from_status, to_status, actor, detail, at FROM job_events WHERE job_id = $1 ORDER BY id",
        job_id
    )
    .fetch_all(pool)
    .await?)
}
