//! `GET /api/jobs`: newest first, filtered, with keyset pagination.

use actix_web::{HttpRequest, HttpResponse, get, web};
use job_store::JobFilter;
use job_store::jobs as db;
use serde::{Deserialize, Serialize};
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::auth::Client;
use crate::routes::status::JobView;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// QUEUED, PROCESSING, COMPLETED, FAILED, RETRYING, DLQ or DELETED.
    status: Option<String>,
    /// HIGH, NORMAL or LOW.
    priority: Option<String>,
    document_id: Option<String>,
    /// 1 to 500; 50 by default.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs, newest first", body = JobList),
        (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[get("/api/jobs")]
pub async fn list_jobs(
    _client: Client,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = service_common::request::query(&req)?;
    let invalid = |field: &str, msg: String| ApiError::field(ErrorCode::InvalidQuery, field, msg);
    let filter = JobFilter {
        status: query.status.as_deref().map(str::parse).transpose().map_err(|e| invalid("status", format!("{e}")))?,
        priority: query
            .priority
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| invalid("priority", format!("{e}")))?,
        document_id: query.document_id,
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let before = query
        .cursor
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned"))?;

    // One row more than asked tells whether another page exists.
    let mut jobs = db::list_jobs(&state.pool, &filter, before, limit + 1).await.map_err(ApiError::store)?;
    let next_cursor = if jobs.len() as i64 > limit {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| j.job_id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(JobList { jobs: jobs.into_iter().map(JobView::from).collect(), next_cursor }))
}
