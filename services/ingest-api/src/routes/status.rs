//! `GET /api/job/{job_id}/status`.

use actix_web::{HttpResponse, get, web};
use job_model::StageRecord;
use job_store::jobs as db;
use serde::Serialize;
use service_common::error::ErrorBody;
use service_common::request::parse_job_id;
pub use service_common::views::JobView;
use service_common::{ApiError, ErrorCode};

use crate::auth::Client;
use crate::state::AppState;

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
