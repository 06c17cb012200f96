//! `GET /api/job/{job_id}/status`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use job_model::{JobMetadata, JobPriority, JobStatus, StageRecord};
use job_store::jobs as db;
use serde::Serialize;
use service_common::error::ErrorBody;
use service_common::request::parse_job_id;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::auth::Client;
use crate::state::AppState;

/// A job as clients see it (the seed's shape, plus stages and trace id).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub job_id: Uuid,
    pub document_id: String,
    pub filename: String,
    pub job_status: JobStatus,
    pub priority: JobPriority,
    pub file_size: i64,
    pub tags: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Attempts started so far.
    pub attempt: i32,
    pub retry_count: i32,
    pub max_retries: i32,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    /// Open this trace in Jaeger to see the job across every process.
    pub trace_id: Option<String>,
}

impl From<JobMetadata> for JobView {
    fn from(j: JobMetadata) -> Self {
        JobView {
            job_id: j.job_id,
            document_id: j.document_id,
            filename: j.filename,
            job_status: j.status,
            priority: j.priority,
            file_size: j.file_size,
            tags: j.tags,
            created_at: j.created_at,
            updated_at: j.updated_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
            attempt: j.attempt,
            retry_count: j.retry_count,
            max_retries: j.max_retries,
            error_message: j.error_message,
            error_stage: j.error_stage,
            trace_id: j.trace_id,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobStatusResponse {
    /// Always "success".
    pub status: &'static str,
    #[serde(flatten)]
    pub job: JobView,
    /// Stages run so far, per attempt, in pipeline order.
    pub stages: Vec<StageRecord>,
}

#[utoipa::path(
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobStatusResponse),
        (status = 400, description = "Malformed job id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[get("/api/job/{job_id}/status")]
pub async fn job_status(
    _client: Client,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let job_id = parse_job_id(&path)?;
    let job = db::get_job(&state.pool, job_id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::new(ErrorCode::JobNotFound, format!("no job {job_id}")))?;
    let stages = db::job_stages(&state.pool, job_id).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(JobStatusResponse { status: "success", job: job.into(), stages }))
}
