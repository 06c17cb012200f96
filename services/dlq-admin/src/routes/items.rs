//! `GET /api/dlq`, `GET /api/dlq/groups`, `GET /api/dlq/{job_id}`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use base64::Engine;
use serde::Deserialize;
use service_common::admin_auth::Reader;
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};

use crate::domain::{FilterFields, ItemCursor, escape_payload, parse_id, parse_limit};
use crate::routes::query;
use crate::routes::views::{DlqGroups, DlqItem, DlqList, DlqMessageSeen, EventView, ItemDetail, JobView, PoisonDetail};
use crate::state::AppState;
use job_store::dlq::items;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
const DETAIL_PAYLOAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `job` or `poison`.
    kind: Option<String>,
    /// Case-insensitive substring of the error message.
    error_contains: Option<String>,
    /// The failing stage, e.g. `upload` (jobs only).
    stage: Option<String>,
    /// HIGH, NORMAL or LOW (jobs only).
    priority: Option<String>,
    document_id: Option<String>,
    /// Dead-lettered at or after (RFC 3339, or a date).
    since: Option<String>,
    /// Dead-lettered before (RFC 3339, or a date).
    until: Option<String>,
    /// A fingerprint from `GET /api/dlq/groups`.
    fingerprint: Option<String>,
    /// The dead-letter reason (`retries_exhausted`, `not_json`, …).
    reason: Option<String>,
    /// 1 to 500; 50 by default.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl ListQuery {
    fn filter_fields(&self) -> FilterFields {
        FilterFields {
            kind: self.kind.clone(),
            error_contains: self.error_contains.clone(),
            stage: self.stage.clone(),
            priority: self.priority.clone(),
            document_id: self.document_id.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            fingerprint: self.fingerprint.clone(),
            reason: self.reason.clone(),
        }
    }
}

#[utoipa::path(
    tag = "dlq",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of DLQ items, newest first", body = DlqList),
        (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/dlq")]
pub async fn list_dlq(_reader: Reader, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    let filter = q.filter_fields().parse("")?;
    let limit = parse_limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = q.cursor.as_deref().map(crate::domain::parse_cursor).transpose()?;
    let preview = i32::try_from(state.payload_preview_bytes).unwrap_or(i32::MAX);
    // One row more than asked tells whether another page exists.
    let mut rows = items::list(&state.pool, &filter, cursor, limit + 1, preview).await.map_err(ApiError::store)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| ItemCursor { dlq_at: r.dlq_at, id: r.id }.encode())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(DlqList { items: rows.into_iter().map(DlqItem::from).collect(), next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupsQuery {
    /// `job` or `poison`.
    kind: Option<String>,
    error_contains: Option<String>,
    stage: Option<String>,
    priority: Option<String>,
    document_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    fingerprint: Option<String>,
    reason: Option<String>,
    /// Most groups returned, 1 to 500; 100 by default.
    limit: Option<i64>,
}

#[utoipa::path(
    tag = "dlq",
    params(GroupsQuery),
    responses(
        (status = 200, description = "DLQ items grouped by error fingerprint, largest group first", body = DlqGroups),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/dlq/groups")]
pub async fn dlq_groups(
    _reader: Reader,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q: GroupsQuery = query(&req)?;
    let filter = FilterFields {
        kind: q.kind,
        error_contains: q.error_contains,
        stage: q.stage,
        priority: q.priority,
        document_id: q.document_id,
        since: q.since,
        until: q.until,
        fingerprint: q.fingerprint,
        reason: q.reason,
    }
    .parse("")?;
    let limit = parse_limit(q.limit, 100, MAX_LIMIT)?;
    let (groups, total_groups) = items::groups(&state.pool, &filter, limit).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(DlqGroups { groups: groups.into_iter().map(Into::into).collect(), total_groups }))
}

#[utoipa::path(
    tag = "dlq",
    params(("job_id" = String, Path, description = "A job id, or a poison item's id")),
    responses(
        (status = 200, description = "The item with its history and stage timings", body = ItemDetail),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such job or item", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/dlq/{job_id}")]
pub async fn show_item(
    _reader: Reader,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let pool = &state.pool;
    if let Some(row) = items::job_item(pool, id).await.map_err(ApiError::store)? {
        let job = job_store::jobs::get_job(pool, id).await.map_err(ApiError::store)?;
        let events = items::job_events(pool, id).await.map_err(ApiError::store)?;
        let stages = job_store::jobs::job_stages(pool, id).await.map_err(ApiError::store)?;
        let seen = items::dlq_message_seen(pool, id).await.map_err(ApiError::store)?;
        let item = DlqItem::from(row);
        return Ok(HttpResponse::Ok().json(ItemDetail {
            in_dlq: item.status == "DLQ",
            item,
            job: job.map(JobView::from),
            events: events.into_iter().map(EventView::from).collect(),
            stages,
            dlq_message: seen.map(|(seen_at, reason)| DlqMessageSeen { seen_at, reason }),
            poison: None,
        }));
    }
    let preview = i32::try_from(state.payload_preview_bytes).unwrap_or(i32::MAX);
    let row = items::poison_item(pool, id, preview).await.map_err(ApiError::store)?;
    let extra = items::poison_extra(pool, id).await.map_err(ApiError::store)?;
    let (Some(row), Some(extra)) = (row, extra) else {
        return Err(ApiError::new(ErrorCode::JobNotFound, format!("no DLQ item or job {id}")));
    };
    let (payload, payload_truncated) = escape_payload(&extra.payload, DETAIL_PAYLOAD_BYTES);
    let poison = PoisonDetail {
        reason: row.reason.clone().unwrap_or_default(),
        error_message: row.error_message.clone(),
        source_queue: extra.source_queue,
        content_type: extra.content_type,
        headers: extra.headers,
        payload,
        payload_truncated,
        payload_size: extra.payload.len() as i64,
        payload_base64: base64::engine::general_purpose::STANDARD.encode(&extra.payload),
        deleted_at: extra.deleted_at,
    };
    let item = DlqItem::from(row);
    Ok(HttpResponse::Ok().json(ItemDetail {
        in_dlq: item.status == "DLQ",
        item,
        job: None,
        events: Vec::new(),
        stages: Vec::new(),
        dlq_message: None,
        poison: Some(poison),
    }))
}
