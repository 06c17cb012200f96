//! `GET /api/audit`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use service_common::admin_auth::Reader;
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};

use crate::domain::parse_limit;
use crate::routes::query;
use crate::routes::views::{AuditEntry, AuditList};
use crate::state::AppState;
use job_store::dlq::audit::{self, Action};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// retry, delete, bulk_retry or purge.
    action: Option<String>,
    /// A token's name as audit rows show it, or `retention-sweep`.
    actor: Option<String>,
    /// A job id (also finds the bulk batches that changed it), item id or fingerprint.
    target: Option<String>,
    /// 1 to 500; 50 by default.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Admin changes, newest first", body = AuditList),
        (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/audit")]
pub async fn list_audit(
    _reader: Reader,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q: AuditQuery = query(&req)?;
    let action = q
        .action
        .as_deref()
        .map(|a| {
            Action::parse(a.trim()).ok_or_else(|| {
                ApiError::field(ErrorCode::InvalidQuery, "action", "action is retry, delete, bulk_retry or purge")
            })
        })
        .transpose()?;
    let limit = parse_limit(q.limit, 50, 500)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "cursor is not one this API returned"))
        })
        .transpose()?;
    let mut rows = audit::list(&state.pool, action, q.actor.as_deref(), q.target.as_deref(), before, limit + 1)
        .await
        .map_err(ApiError::store)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AuditList { entries: rows.into_iter().map(AuditEntry::from).collect(), next_cursor }))
}
