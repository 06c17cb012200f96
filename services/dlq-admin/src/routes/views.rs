//! What the API returns, as documented in the OpenAPI schema.

use chrono::{DateTime, Utc};
use job_model::{JobPriority, StageRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{FilterFields, escape_payload};
use job_model::ItemKind;
use job_store::dlq::audit::EntryRow;
use job_store::dlq::items::{EventRow, GroupRow, ItemRow};
pub use service_common::views::JobView;

/// One DLQ item: a dead-lettered job, or a poison message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqItem {
    pub kind: ItemKind,
    /// Use in `/api/dlq/{id}`: the job id for a job, the item id for a poison message.
    pub id: Uuid,
    /// DLQ, or where the item went since (QUEUED after a retry, DELETED, …).
    pub status: String,
    /// The job; for a poison message, the one it names (which may not exist).
    pub job_id: Option<Uuid>,
    pub document_id: Option<String>,
    pub filename: Option<String>,
    pub priority: Option<JobPriority>,
    /// The worker's error code (e.g. `blob_store_unavailable`); `poison` for poison messages.
    pub error_kind: String,
    pub error_message: Option<String>,
    /// The stage that failed.
    pub error_stage: Option<String>,
    /// Why it was dead-lettered: `retries_exhausted`, `stage_panicked`,
    /// `poison_crashes`, `not_json`, `unknown_job`, `delivery_limit`, …
    pub dlq_reason: Option<String>,
    pub retry_count: Option<i32>,
    /// Attempts made so far.
    pub attempt: Option<i32>,
    /// When it entered the DLQ.
    pub dlq_at: DateTime<Utc>,
    /// Its group in `GET /api/dlq/groups`.
    pub fingerprint: String,
    /// Poison messages only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poison: Option<PoisonPreview>,
}

/// A poison message's reason and the start of its raw payload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoisonPreview {
    pub reason: String,
    /// The payload's first bytes as text: UTF-8 kept, control characters
    /// escaped (`\n`, `\u{1b}`), other bytes as `\xNN`.
    pub payload: String,
    /// The whole payload's size in bytes.
    pub payload_size: i64,
    pub payload_truncated: bool,
}

impl From<ItemRow> for DlqItem {
    fn from(row: ItemRow) -> Self {
        let kind = if row.kind == "poison" { ItemKind::Poison } else { ItemKind::Job };
        let poison = (kind == ItemKind::Poison).then(|| {
            let shown = row.payload.unwrap_or_default();
            let size = i64::from(row.payload_size.unwrap_or(0));
            PoisonPreview {
                reason: row.reason.clone().unwrap_or_default(),
                payload: escape_payload(&shown, usize::MAX).0,
                payload_size: size,
                payload_truncated: size > shown.len() as i64,
            }
        });
        DlqItem {
            kind,
            id: row.id,
            status: row.status,
            job_id: row.job_id,
            document_id: row.document_id,
            filename: row.filename,
            priority: row.priority.and_then(JobPriority::from_value),
            error_kind: row.error_kind,
            error_message: row.error_message,
            error_stage: row.error_stage,
            dlq_reason: row.reason,
            retry_count: row.retry_count,
            attempt: row.attempt,
            dlq_at: row.dlq_at,
            fingerprint: row.fingerprint,
            poison,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqList {
    pub items: Vec<DlqItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// DLQ items that failed the same way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqGroup {
    /// Retry the whole group with `POST /api/dlq/retry {"fingerprint": …}`.
    pub fingerprint: String,
    pub kind: ItemKind,
    /// e.g. "blob_store_unavailable at upload".
    pub title: String,
    pub error_kind: String,
    pub stage: Option<String>,
    pub dlq_reason: Option<String>,
    /// The error message with ids, numbers, paths and quoted values replaced
    /// by `<id>`, `<n>`, `<path>`, `<str>`, `<hex>`.
    pub message_template: String,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The group's newest item.
    pub sample: GroupSample,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupSample {
    pub id: Uuid,
    pub job_id: Option<Uuid>,
    pub error_message: Option<String>,
}

impl From<GroupRow> for DlqGroup {
    fn from(g: GroupRow) -> Self {
        let kind = if g.kind == "poison" { ItemKind::Poison } else { ItemKind::Job };
        let title = match kind {
            ItemKind::Poison => format!("poison message: {}", g.reason.as_deref().unwrap_or("unknown")),
            ItemKind::Job => match &g.stage {
                Some(stage) => format!("{} at {stage}", g.error_kind),
                None => g.error_kind.clone(),
            },
        };
        DlqGroup {
            fingerprint: g.fingerprint,
            kind,
            title,
            error_kind: g.error_kind,
            stage: g.stage,
            dlq_reason: g.reason,
            message_template: g.template,
            count: g.count,
            first_seen: g.first_seen,
            last_seen: g.last_seen,
            sample: GroupSample { id: g.sample_id, job_id: g.sample_job_id, error_message: g.sample_error },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqGroups {
    /// Largest first.
    pub groups: Vec<DlqGroup>,
    /// Groups in all (the list stops at `limit`).
    pub total_groups: i64,
}

/// One status change in a job's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        EventView {
            id: e.id,
            from_status: e.from_status,
            to_status: e.to_status,
            actor: e.actor,
            detail: e.detail,
            at: e.at,
        }
    }
}

/// The job's own dead letter, as seen on `jobs.dlq`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqMessageSeen {
    pub seen_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// Everything stored about a poison message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoisonDetail {
    pub reason: String,
    pub error_message: Option<String>,
    /// The queue it was dead-lettered from, when known.
    pub source_queue: Option<String>,
    pub content_type: Option<String>,
    /// Its AMQP headers (x-death included).
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// Escaped as in the list, up to 64 KiB.
    pub payload: String,
    pub payload_truncated: bool,
    pub payload_size: i64,
    /// The exact bytes, base64.
    pub payload_base64: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemDetail {
    pub item: DlqItem,
    pub in_dlq: bool,
    /// Jobs only: the row.
    pub job: Option<JobView>,
    /// Jobs only: every status change, oldest first.
    pub events: Vec<EventView>,
    /// Jobs only: stage timings of every attempt.
    pub stages: Vec<StageRecord>,
    /// Jobs only: when its dead letter was imported from `jobs.dlq`.
    pub dlq_message: Option<DlqMessageSeen>,
    /// Poison messages only.
    pub poison: Option<PoisonDetail>,
}

/// The body of a single retry or delete.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (required; kept in the audit trail and the job's history).
    #[allow(dead_code)]
    pub reason: String,
}

/// What a single retry or delete did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionResult {
    /// Always "success".
    pub status: &'static str,
    pub id: Uuid,
    pub kind: ItemKind,
    pub from: &'static str,
    pub to: &'static str,
    /// Retries only: the attempt number of the job's next run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<i32>,
    pub audit_id: i64,
    pub request_id: Uuid,
}

/// A bulk retry: `job_ids`, or a `filter` and/or a `fingerprint`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetryRequest {
    /// Why (required).
    #[allow(dead_code)]
    pub reason: String,
    /// Report what would be retried, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Exactly these jobs (those not in the DLQ are reported, not retried).
    pub job_ids: Option<Vec<String>>,
    /// Every DLQ job of this group.
    pub fingerprint: Option<String>,
    /// Every DLQ job matching (an empty object: the whole DLQ).
    pub filter: Option<FilterFields>,
    /// Most jobs to requeue (default and ceiling: BULK_RETRY_MAX_JOBS).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotRetried {
    pub job_id: Uuid,
    /// Its status now; absent when there is no such job.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkRetryResult {
    /// Always "success".
    pub status: &'static str,
    pub dry_run: bool,
    /// Dry run: jobs that would be requeued now (up to the limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<i64>,
    /// Dry run: the first of them, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_job_ids: Option<Vec<Uuid>>,
    /// Jobs requeued by this request.
    pub retried: u64,
    /// Transactions (and audit rows) it took.
    pub batches: u32,
    /// Stopped at the limit; more may match.
    pub limit_reached: bool,
    /// With `job_ids`: those not requeued.
    pub not_retried: Vec<NotRetried>,
    /// Groups this request's audit rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Why (required).
    #[allow(dead_code)]
    pub reason: String,
    /// Delete items that entered the DLQ more than this many days ago
    /// (default: RABBITMQ_DLQ_RETENTION_DAYS).
    pub older_than_days: Option<i64>,
    /// Count, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurgeResult {
    /// Always "success".
    pub status: &'static str,
    pub dry_run: bool,
    pub older_than_days: u32,
    /// Items that entered the DLQ before this instant were deleted.
    pub cutoff: DateTime<Utc>,
    /// Jobs now DELETED (or that would be, on a dry run).
    pub deleted_jobs: u64,
    pub deleted_poison: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
}

/// One admin change (one batch of a bulk one).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// retry, delete, bulk_retry or purge.
    pub action: String,
    pub reason: String,
    pub request_id: Uuid,
    pub target: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    pub matched: i32,
    pub affected: i32,
    pub status_before: Option<String>,
    pub status_after: Option<String>,
    pub job_ids: Vec<Uuid>,
}

impl From<EntryRow> for AuditEntry {
    fn from(e: EntryRow) -> Self {
        AuditEntry {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            reason: e.reason,
            request_id: e.request_id,
            target: e.target,
            filter: e.filter,
            matched: e.matched,
            affected: e.affected,
            status_before: e.status_before,
            status_after: e.status_after,
            job_ids: e.job_ids,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}
