//! `POST /api/process-async`: queue a document already in the blob store.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use job_model::{JobMetadata, JobPriority, JobRoute, NewJob, OutboxMessage, ProcessDocument};
use job_store::SubmitOutcome;
use job_store::jobs as db;
use job_store::outbox::OutboxRow;
use serde::Serialize;
use service_common::error::ErrorBody;
use service_common::unread_body::refuse_unread;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::auth::Client;
use crate::domain::Submission;
use crate::metrics::SubmitLabels;
use crate::routes::{idempotency_key, read_body_from, require_media_type, tracking_url};
use crate::state::AppState;

/// The request body (documentation of the shape; parsing is field by field
/// so that every rejection has its own code).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SubmitRequest {
    /// The client's id for the document (1 to 255 printable characters).
    document_id: String,
    /// Original file name, without directories.
    filename: String,
    /// Path of the document inside the blob store: relative, no `..`.
    blob_path: String,
    /// Size in bytes: greater than 0, at most the configured limit.
    file_size: i64,
    /// HIGH, NORMAL (default) or LOW, in any case.
    priority: Option<JobPriority>,
    /// Up to 32 string tags.
    tags: Option<BTreeMap<String, String>>,
}

/// The answer to a submission: the job is durably queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Always "success" (the seed's shape, as the status route says too).
    pub status: &'static str,
    pub job_id: Uuid,
    pub document_id: String,
    pub priority: JobPriority,
    pub message: String,
    /// Where to poll for the job's status.
    pub tracking_url: String,
}

#[utoipa::path(
    tag = "jobs",
    request_body(content = SubmitRequest, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Returns the same job for a repeated request")),
    responses(
        (status = 202, description = "Queued durably", body = Accepted),
        (status = 400, description = "Malformed JSON or header", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 409, description = "Idempotency key reused with a different body", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable; retry later", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[post("/api/process-async")]
pub async fn process_async(
    _client: Client,
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    // Refusals before the body is read to its end close the connection
    // rather than read the rest of it (see `refuse_unread`).
    let key = match require_media_type(&req, |m| m == "application/json" || m.ends_with("+json"), "application/json")
        .and_then(|()| idempotency_key(&req))
    {
        Ok(key) => key,
        Err(error) => return refuse_unread(error, payload),
    };
    let body = match read_body_from(&req, &mut payload, state.max_json_body).await {
        Ok(body) => body,
        Err(error) => return refuse_unread(error, payload),
    };
    let submission = match Submission::from_json(&body, &state.limits) {
        Ok(submission) => submission,
        Err(error) => return HttpResponse::from_error(error),
    };
    enqueue(&state, submission, key).await.unwrap_or_else(HttpResponse::from_error)
}

/// Commits the job and its outbox message, then answers 202 (or the earlier
/// job's 202 for a repeat, or 409 for a conflicting reuse of a key).
pub(crate) async fn enqueue(
    state: &AppState,
    submission: Submission,
    key: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let outcome = submit(state, &submission, key).await?;
    let (label, job) = match &outcome {
        SubmitOutcome::Created { job, .. } => ("created", job),
        SubmitOutcome::Duplicate(job) => ("duplicate", job),
        SubmitOutcome::Conflict(job) => ("conflict", job),
    };
    state
        .metrics
        .submissions
        .get_or_create(&SubmitLabels { priority: submission.document.priority.routing_key(), outcome: label })
        .inc();
    match outcome {
        SubmitOutcome::Created { job, .. } => Ok(accepted(&job, false)),
        SubmitOutcome::Duplicate(job) => Ok(accepted(&job, true)),
        SubmitOutcome::Conflict(_) => Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            format!(
                "job {} was already created for this idempotency key or document_id with a different request; \
                 use a new Idempotency-Key",
                job.job_id
            ),
        )),
    }
}

async fn submit(state: &AppState, s: &Submission, key: Option<String>) -> Result<SubmitOutcome, ApiError> {
    let job_id = Uuid::now_v7();
    // The request's trace context travels with the outbox row, so the relay's
    // publish and the worker's attempts continue this request's trace.
    let trace_headers = telemetry::current_context_headers();
    let job = NewJob {
        job_id,
        document: s.document.clone(),
        max_retries: state.max_retries,
        idempotency_key: key,
        request_hash: s.request_hash(),
        trace_id: telemetry::trace_id(),
        traceparent: trace_headers.get("traceparent").cloned(),
    };
    let message =
        OutboxMessage::for_job(&state.topology, ProcessDocument::from(&job), 1, JobRoute::Queue, trace_headers);
    let mut connection = state.connections.acquire().await.map_err(ApiError::store)?;
    let claim = Some(state.relay.claim());
    let submitted = db::submit_job(&mut connection, &job, &message, "ingest-api", state.dedup, claim).await;
    let submitted = connection.keep_if_ok(submitted).map_err(ApiError::store)?;
    if let SubmitOutcome::Created { outbox_id, .. } = &submitted {
        // Published now by this process's relay, not at its next poll.
        state.relay.hand_over(vec![OutboxRow::handed(*outbox_id, message)]);
    }
    Ok(submitted)
}

fn accepted(job: &JobMetadata, replayed: bool) -> HttpResponse {
    let url = tracking_url(job.job_id);
    let mut response = HttpResponse::Accepted();
    response.insert_header((header::LOCATION, url.clone()));
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(Accepted {
        status: "success",
        job_id: job.job_id,
        document_id: job.document.document_id.clone(),
        priority: job.document.priority,
        message: if replayed {
            "This request was seen before; this is its job".to_owned()
        } else {
            format!("Document queued for processing with {} priority", job.document.priority)
        },
        tracking_url: url,
    })
}
