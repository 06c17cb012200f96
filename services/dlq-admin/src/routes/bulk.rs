//! `POST /api/dlq/retry` (bulk) and `POST /api/dlq/purge`.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, post, web};
use service_common::admin_auth::Writer;
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::domain::parse_id;
use crate::ops::{self, Mode, Selection};
use crate::routes::views::{BulkRetryRequest, BulkRetryResult, NotRetried, PurgeRequest, PurgeResult};
use crate::routes::write_body;
use crate::state::AppState;
use job_model::ItemKind;

/// Longest retention an admin may name, in days.
const MAX_DAYS: i64 = 36_500;

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(ErrorCode::InvalidQuery, field.to_owned(), message.into())
}

/// The request's selection, checked.
fn selection(body: &BulkRetryRequest, max_jobs: u32) -> Result<Selection, ApiError> {
    let has_filter = body.filter.is_some() || body.fingerprint.is_some();
    match &body.job_ids {
        Some(_) if has_filter => Err(invalid("job_ids", "give job_ids, or a filter and/or a fingerprint, not both")),
        Some(raw) => {
            if raw.is_empty() {
                return Err(invalid("job_ids", "job_ids is empty"));
            }
            if raw.len() > max_jobs as usize {
                return Err(invalid("job_ids", format!("at most {max_jobs} job ids per request")));
            }
            let mut seen = BTreeSet::new();
            let mut ids = Vec::with_capacity(raw.len());
            for (i, s) in raw.iter().enumerate() {
                let id: Uuid = parse_id(s).map_err(|mut e| {
                    e.field = Some(format!("job_ids[{i}]"));
                    e
                })?;
                if seen.insert(id) {
                    ids.push(id);
                }
            }
            Ok(Selection::Ids(ids))
        }
        None if !has_filter => Err(ApiError::field(
            ErrorCode::MissingField,
            "filter",
            "say what to retry: job_ids, a fingerprint, or a filter ({} for the whole DLQ)",
        )),
        None => {
            let mut filter = body.filter.clone().unwrap_or_default().parse("filter.")?;
            if let Some(fp) = &body.fingerprint {
                let top =
                    crate::domain::FilterFields { fingerprint: Some(fp.clone()), ..Default::default() }.parse("")?;
                if filter.fingerprint.as_ref().is_some_and(|f| Some(f) != top.fingerprint.as_ref()) {
                    return Err(invalid("fingerprint", "fingerprint and filter.fingerprint differ"));
                }
                filter.fingerprint = top.fingerprint;
            }
            match filter.kind {
                Some(ItemKind::Poison) => {
                    return Err(invalid(
                        "filter.kind",
                        "poison messages have no job to requeue; only jobs are retried",
                    ));
                }
                _ => filter.kind = Some(ItemKind::Job),
            }
            Ok(Selection::Filter(filter))
        }
    }
}

/// Requeues many DLQ jobs: by `job_ids`, by `fingerprint`, or by `filter`
/// (the list's filters). Works in batches of BULK_BATCH_SIZE, one
/// transaction and one audit row each, at most BULK_RETRY_RATE_PER_SECOND
/// jobs per second per process, up to `limit` (at most BULK_RETRY_MAX_JOBS).
/// Several requests, from one process or several, may run at once: each job
/// is requeued exactly once. `dry_run` reports what would be retried.
#[utoipa::path(
    tag = "dlq",
    request_body = BulkRetryRequest,
    responses(
        (status = 200, description = "Requeued (or, on a dry run, counted)", body = BulkRetryResult),
        (status = 400, description = "Malformed ids, filter or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 422, description = "No reason, or nothing selected", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[post("/api/dlq/retry")]
pub async fn bulk_retry(
    writer: Writer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (body, reason): (BulkRetryRequest, String) = write_body(&req, payload, state.max_json_body).await?;
    let max = state.bulk.max_jobs;
    let limit = match body.limit {
        None => max,
        Some(n) if (1..=i64::from(max)).contains(&n) => n as u32,
        Some(_) => return Err(invalid("limit", format!("limit must be between 1 and {max}"))),
    };
    let selection = selection(&body, max)?;
    if body.dry_run {
        let (matched, sample) = ops::bulk_retry_preview(&state, &selection, limit).await.map_err(ApiError::store)?;
        return Ok(HttpResponse::Ok().json(BulkRetryResult {
            status: "success",
            dry_run: true,
            matched: Some(matched),
            sample_job_ids: Some(sample),
            retried: 0,
            batches: 0,
            limit_reached: false,
            not_retried: Vec::new(),
            request_id: None,
        }));
    }
    let outcome = ops::bulk_retry(&state, &writer.actor, &reason, &selection, limit).await.map_err(ApiError::store)?;
    tracing::info!(actor = %writer.actor, %reason, retried = outcome.retried, request_id = %outcome.request_id, "DLQ bulk retry");
    Ok(HttpResponse::Ok().json(BulkRetryResult {
        status: "success",
        dry_run: false,
        matched: None,
        sample_job_ids: None,
        retried: outcome.retried,
        batches: outcome.batches,
        limit_reached: outcome.limit_reached,
        not_retried: outcome.not_retried.into_iter().map(|(job_id, status)| NotRetried { job_id, status }).collect(),
        request_id: Some(outcome.request_id),
    }))
}

/// Deletes (status DELETED, rows kept) every DLQ item that entered the DLQ
/// more than `older_than_days` ago (default RABBITMQ_DLQ_RETENTION_DAYS).
/// The retention sweep does the same on its own every
/// DLQ_SWEEP_INTERVAL_SECONDS.
#[utoipa::path(
    tag = "dlq",
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "Deleted (or, on a dry run, counted)", body = PurgeResult),
        (status = 400, description = "Malformed body or age", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 422, description = "No reason given", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[post("/api/dlq/purge")]
pub async fn purge(
    writer: Writer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (body, reason): (PurgeRequest, String) = write_body(&req, payload, state.max_json_body).await?;
    let days = match body.older_than_days {
        None => state.retention_days,
        Some(d) if (0..=MAX_DAYS).contains(&d) => d as u32,
        Some(_) => return Err(invalid("older_than_days", format!("older_than_days must be between 0 and {MAX_DAYS}"))),
    };
    let outcome =
        ops::purge(&state, &writer.actor, &reason, days, Mode::Purge, body.dry_run).await.map_err(ApiError::store)?;
    if !body.dry_run {
        tracing::info!(actor = %writer.actor, %reason, jobs = outcome.jobs, poison = outcome.poison, "DLQ purged");
    }
    Ok(HttpResponse::Ok().json(PurgeResult {
        status: "success",
        dry_run: body.dry_run,
        older_than_days: days,
        cutoff: outcome.cutoff,
        deleted_jobs: outcome.jobs,
        deleted_poison: outcome.poison,
        request_id: (!body.dry_run).then_some(outcome.request_id),
    }))
}
