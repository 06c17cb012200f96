//! What was found in a document: `GET /api/job/{job_id}/result`, and the
//! findings that need a person, `GET /api/tickets` and
//! `POST /api/tickets/{id}/resolve`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use job_model::JobStatus;
use job_store::tickets::{self, Resolved, TicketRow};
use serde::{Deserialize, Serialize};
use service_common::error::ErrorBody;
use service_common::request::{parse_job_id, reason_body};
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::auth::Client;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// A finding that needs a person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub ticket_id: i64,
    pub job_id: Uuid,
    /// The rule that raised it, e.g. `high_total`, `possible_duplicate`.
    pub rule: String,
    /// info, low, medium, high or critical.
    pub severity: String,
    pub message: String,
    /// OPEN, IN_PROGRESS, RESOLVED or DISMISSED.
    pub ticket_status: String,
    /// The attempt that opened it.
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Why it was closed.
    pub resolution: Option<String>,
    /// Who closed it (the API key's name).
    pub resolved_by: Option<String>,
}

impl From<TicketRow> for TicketView {
    fn from(t: TicketRow) -> Self {
        TicketView {
            ticket_id: t.ticket_id,
            job_id: t.job_id,
            rule: t.rule,
            severity: t.severity,
            message: t.message,
            ticket_status: t.status,
            attempt: t.attempt,
            created_at: t.created_at,
            updated_at: t.updated_at,
            resolved_at: t.resolved_at,
            resolution: t.resolution,
            resolved_by: t.resolved_by,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobResult {
    /// Always "success".
    pub status: &'static str,
    pub job_id: Uuid,
    /// The result document, as stored in Postgres and the blob store: the
    /// document's facts (format, pages, sha256, text digest, needs_ocr), its
    /// classification with a confidence, every field as {value, confidence,
    /// source} with amounts as decimal strings, line items and findings.
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    /// The tickets its findings opened.
    pub tickets: Vec<TicketView>,
}

#[utoipa::path(
    tag = "results",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The result of a COMPLETED job", body = JobResult),
        (status = 400, description = "Malformed job id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not COMPLETED (job_not_completed, with its status)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[get("/api/job/{job_id}/result")]
pub async fn job_result(
    _client: Client,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let job_id = parse_job_id(&path)?;
    let job = job_store::jobs::get_job(&state.pool, job_id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::new(ErrorCode::JobNotFound, format!("no job {job_id}")))?;
    if job.status != JobStatus::Completed {
        return Err(ApiError::field(
            ErrorCode::JobNotCompleted,
            "job_status",
            format!("job {job_id} is {}, not COMPLETED: it has no result yet", job.status),
        ));
    }
    let result =
        job_store::results::document_of(&state.pool, job_id).await.map_err(ApiError::store)?.ok_or_else(|| {
            ApiError::store(job_store::StoreError::invariant(format!("COMPLETED job {job_id} has no result row")))
        })?;
    let tickets = tickets::of_job(&state.pool, job_id).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(JobResult {
        status: "success",
        job_id,
        result,
        tickets: tickets.into_iter().map(TicketView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// OPEN, IN_PROGRESS, RESOLVED or DISMISSED.
    status: Option<String>,
    /// A rule id, e.g. `possible_duplicate`.
    rule: Option<String>,
    /// 1 to 500; 50 by default.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketList {
    /// Always "success".
    pub status: &'static str,
    /// Oldest first: a work list.
    pub tickets: Vec<TicketView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    tag = "results",
    params(TicketQuery),
    responses(
        (status = 200, description = "A page of tickets, oldest first", body = TicketList),
        (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[get("/api/tickets")]
pub async fn list_tickets(
    _client: Client,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: TicketQuery = service_common::request::query(&req)?;
    let invalid = |field: &str, msg: String| ApiError::field(ErrorCode::InvalidQuery, field, msg);
    let status = query.status.map(|s| s.trim().to_ascii_uppercase());
    if let Some(s) = &status
        && !tickets::STATUSES.contains(&s.as_str())
    {
        return Err(invalid("status", format!("status is one of {}", tickets::STATUSES.join(", "))));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let after = query
        .cursor
        .as_deref()
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned"))?;
    let mut rows = tickets::list(&state.pool, status.as_deref(), query.rule.as_deref(), after, limit + 1)
        .await
        .map_err(ApiError::store)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|t| t.ticket_id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(TicketList {
        status: "success",
        tickets: rows.into_iter().map(TicketView::from).collect(),
        next_cursor,
    }))
}

/// `{"reason": "why"}`; nothing else.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Why the ticket is closed (required, at most 1000 characters).
    #[allow(dead_code)]
    reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResolvedTicket {
    /// Always "success".
    pub status: &'static str,
    pub ticket: TicketView,
}

#[utoipa::path(
    tag = "results",
    params(("ticket_id" = i64, Path, description = "The ticket's id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "Closed, with who and why", body = ResolvedTicket),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "Already resolved or dismissed", body = ErrorBody),
        (status = 422, description = "No reason given", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[post("/api/tickets/{ticket_id}/resolve")]
pub async fn resolve_ticket(
    client: Client,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ticket_id: i64 = path.trim().parse().map_err(|_| {
        ApiError::new(ErrorCode::InvalidQuery, format!("{:?} is not a ticket id (a number)", path.as_str()))
    })?;
    let (_, reason): (ResolveBody, String) = reason_body(&req, payload, state.max_json_body).await?;
    match tickets::resolve(&state.pool, ticket_id, &reason, &client.label).await.map_err(ApiError::store)? {
        Resolved::Now(row) => {
            tracing::info!(ticket_id, actor = %client.label, %reason, "ticket resolved");
            Ok(HttpResponse::Ok().json(ResolvedTicket { status: "success", ticket: row.into() }))
        }
        Resolved::AlreadyClosed(row) => {
            Err(ApiError::new(ErrorCode::Conflict, format!("ticket {ticket_id} is {} already", row.status)))
        }
        Resolved::NotFound => Err(ApiError::new(ErrorCode::NotFound, format!("no ticket {ticket_id}"))),
    }
}
