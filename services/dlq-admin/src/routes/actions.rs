//! `POST /api/dlq/{job_id}/retry` and `DELETE /api/dlq/{job_id}`.

use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use service_common::ApiError;
use service_common::admin_auth::Writer;
use service_common::error::ErrorBody;

use crate::domain::parse_id;
use crate::ops::{self, SingleOutcome};
use crate::routes::views::{ActionResult, ReasonBody};
use crate::routes::write_body;
use crate::state::AppState;

fn result(o: SingleOutcome) -> HttpResponse {
    HttpResponse::Ok().json(ActionResult {
        status: "success",
        id: o.id,
        kind: o.kind,
        from: o.from,
        to: o.to,
        next_attempt: o.next_attempt,
        audit_id: o.audit_id,
        request_id: o.request_id,
    })
}

/// Puts a DLQ job back on its queue with a fresh retry budget
/// (`retry_count` 0; `attempt` keeps counting; history kept). The message
/// goes through the outbox, so the retry holds while the broker is down.
/// A job not in the DLQ, including one retried a moment ago, is a 409
/// `conflict`: a repeated retry changes nothing.
#[utoipa::path(
    tag = "dlq",
    params(("job_id" = String, Path, description = "The job's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Requeued", body = ActionResult),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Not in the DLQ (already retried, deleted, …), or a poison message", body = ErrorBody),
        (status = 422, description = "No reason given", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[post("/api/dlq/{job_id}/retry")]
pub async fn retry_item(
    writer: Writer,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let (_, reason): (ReasonBody, String) = write_body(&req, payload, state.max_json_body).await?;
    let outcome = ops::retry_one(&state, &writer.actor, &reason, id).await?;
    tracing::info!(job_id = %id, actor = %writer.actor, %reason, "DLQ job retried");
    Ok(result(outcome))
}

/// Marks a DLQ job (or poison item) DELETED; the row and its history stay
/// for audit. Its dead letter has already been taken off `jobs.dlq` by the
/// importer (or is dropped when it arrives).
#[utoipa::path(
    tag = "dlq",
    params(("job_id" = String, Path, description = "A job id, or a poison item's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Deleted", body = ActionResult),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such job or item", body = ErrorBody),
        (status = 409, description = "Not in the DLQ", body = ErrorBody),
        (status = 422, description = "No reason given", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[delete("/api/dlq/{job_id}")]
pub async fn delete_item(
    writer: Writer,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let (_, reason): (ReasonBody, String) = write_body(&req, payload, state.max_json_body).await?;
    let outcome = ops::delete_one(&state, &writer.actor, &reason, id).await?;
    tracing::info!(id = %id, actor = %writer.actor, %reason, "DLQ item deleted");
    Ok(result(outcome))
}
