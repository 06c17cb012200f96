//! `GET /api/executions` and `GET /api/executions/{job_id}`: execution traces.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_common::admin_auth::Reader;
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::executions::{self, Cursor, ExecutionTrace, ListFilter};
use crate::routes::query;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 500; 50 by default.
    limit: Option<i64>,
    /// The attempt's outcome: completed, failed, retrying or dlq.
    status: Option<String>,
    /// Only attempts that finished at or after this instant (RFC 3339).
    since: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionList {
    /// Newest first (by finished_at).
    pub executions: Vec<ExecutionTrace>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    tag = "executions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of execution traces, newest first", body = ExecutionList),
        (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/executions")]
pub async fn list_executions(
    _reader: Reader,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    let invalid = |field: &str, msg: String| ApiError::field(ErrorCode::InvalidQuery, field, msg);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let outcome = q
        .status
        .as_deref()
        .map(|s| {
            executions::parse_outcome(s)
                .ok_or_else(|| invalid("status", format!("unknown status {s:?}: completed, failed, retrying or dlq")))
        })
        .transpose()?;
    let since = q
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| invalid("since", format!("since is not an RFC 3339 instant: {e}")))
        })
        .transpose()?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            Cursor::decode(c)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned"))
        })
        .transpose()?;

    let filter = ListFilter { outcome, since, after };
    // One row more than asked tells whether another page exists.
    let mut page = executions::list(&state.pool, &filter, limit + 1).await.map_err(ApiError::database)?;
    let next_cursor = if page.len() as i64 > limit {
        page.truncate(limit as usize);
        page.last().map(|e| Cursor { finished_at: e.finished_at, job_id: e.job_id, attempt: e.attempt }.encode())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ExecutionList { executions: page, next_cursor }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobExecutions {
    pub job_id: Uuid,
    /// Every recorded attempt, oldest first, each with its stages.
    pub attempts: Vec<ExecutionTrace>,
}

#[utoipa::path(
    tag = "executions",
    params(("job_id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job's execution trace: every attempt and every stage", body = JobExecutions),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No execution of this job is recorded (or it is older than the raw retention)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/executions/{job_id}")]
pub async fn job_executions(
    _reader: Reader,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let job_id = service_common::request::parse_job_id(&path)?;
    let attempts = executions::of_job(&state.pool, job_id).await.map_err(ApiError::database)?;
    if attempts.is_empty() {
        return Err(ApiError::new(ErrorCode::JobNotFound, "no execution of this job is recorded"));
    }
    Ok(HttpResponse::Ok().json(JobExecutions { job_id, attempts }))
}
