//! Reading the DLQ: DLQ job rows and live poison items, as one list.

use crate::error::StoreResult;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{DlqFilter, ItemCursor, filtered};
use job_model::ItemKind;

/// One DLQ item as stored: a job row, or a poison message.
#[derive(Debug, Clone)]
pub struct ItemRow {
    pub kind: String,
    pub id: Uuid,
    pub status: String,
    pub job_id: Option<Uuid>,
    pub document_id: Option<String>,
    pub filename: Option<String>,
    pub priority: Option<i16>,
    pub error_kind: String,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    pub reason: Option<String>,
    pub retry_count: Option<i32>,
    pub attempt: Option<i32>,
    pub dlq_at: DateTime<Utc>,
    pub fingerprint: String,
    /// The first bytes of a poison message (as many as asked for).
    pub payload: Option<Vec<u8>>,
    pub payload_size: Option<i32>,
}

/// `filtered!` over `dlq_items` with [`ItemRow`]'s columns; $10 is how many
/// payload bytes to return, `$where` continues the statement up to the filter.
macro_rules! select_items {
    ($where:literal, $after:literal; $filter:expr $(, $arg:expr)* $(,)?) => {
        filtered!(
            query_as, ItemRow;
            r#"SELECT kind AS "kind!", id AS "id!", status AS "status!", job_id, document_id, filename, priority,
                      error_kind AS "error_kind!", error_message, error_stage, reason, retry_count, attempt,
                      dlq_at AS "dlq_at!", fingerprint AS "fingerprint!",
                      substring(payload FROM 1 FOR $10::int) AS payload, octet_length(payload) AS payload_size
               FROM dlq_items "# $where,
            $after;
            $filter $(, $arg)*
        )
    };
}

/// Newest first, after `cursor`; `limit` rows at most.
pub async fn list(
    pool: &PgPool,
    filter: &DlqFilter,
    cursor: Option<ItemCursor>,
    limit: i64,
    preview_bytes: i32,
) -> StoreResult<Vec<ItemRow>> {
    Ok(select_items!(
        "WHERE status = 'DLQ' AND",
        " AND ($11::timestamptz IS NULL OR (dlq_at, id) < ($11::timestamptz, $12::uuid)) \
          ORDER BY dlq_at DESC, id DESC LIMIT $13";
        filter,
        preview_bytes,
        cursor.map(|c| c.dlq_at),
        cursor.map(|c| c.id),
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// A job as a DLQ item, whatever its status now (it may have been retried).
pub async fn job_item(pool: &PgPool, job_id: Uuid) -> StoreResult<Option<ItemRow>> {
    item(pool, ItemKind::Job, job_id, 0).await
}

/// A poison item with up to `preview_bytes` of its payload.
pub async fn poison_item(pool: &PgPool, item_id: Uuid, preview_bytes: i32) -> StoreResult<Option<ItemRow>> {
    item(pool, ItemKind::Poison, item_id, preview_bytes).await
}

async fn item(pool: &PgPool, kind: ItemKind, id: Uuid, preview_bytes: i32) -> StoreResult<Option<ItemRow>> {
    let filter = DlqFilter { kind: Some(kind), ..DlqFilter::default() };
    Ok(select_items!("WHERE id = $11 AND", ""; &filter, preview_bytes, id).fetch_optional(pool).await?)
}

/// One fingerprint's items.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub fingerprint: String,
    pub kind: String,
    pub error_kind: String,
    pub stage: Option<String>,
    pub reason: Option<String>,
    pub template: String,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub sample_id: Uuid,
    pub sample_job_id: Option<Uuid>,
    pub sample_error: Option<String>,
}

/// The filtered DLQ grouped by fingerprint, largest group first.
pub async fn groups(pool: &PgPool, filter: &DlqFilter, limit: i64) -> StoreResult<(Vec<GroupRow>, i64)> {
    let rows = filtered!(
        query;
        r#"WITH grouped AS (
               SELECT fingerprint, min(kind) AS kind, min(error_kind) AS error_kind, min(error_stage) AS stage,
                      min(reason) AS reason, min(dlq_error_template(error_message)) AS template, count(*) AS count,
                      min(dlq_at) AS first_seen, max(dlq_at) AS last_seen,
                      (array_agg(id ORDER BY dlq_at DESC, id DESC))[1] AS sample_id,
                      (array_agg(job_id ORDER BY dlq_at DESC, id DESC))[1] AS sample_job_id,
                      (array_agg(error_message ORDER BY dlq_at DESC, id DESC))[1] AS sample_error
               FROM dlq_items WHERE status = 'DLQ' AND "#,
        r#"    GROUP BY fingerprint
           )
           SELECT fingerprint AS "fingerprint!", kind AS "kind!", error_kind AS "error_kind!", stage, reason,
                  template AS "template!", count AS "count!", first_seen AS "first_seen!",
                  last_seen AS "last_seen!", sample_id AS "sample_id!", sample_job_id, sample_error,
                  count(*) OVER () AS "total_groups!"
           FROM grouped ORDER BY count DESC, last_seen DESC, fingerprint LIMIT $10"#;
        filter,
        limit
    )
    .fetch_all(pool)
    .await?;
    let total = rows.first().map(|r| r.total_groups).unwrap_or(0);
    let groups = rows
        .into_iter()
        .map(|r| GroupRow {
            fingerprint: r.fingerprint,
            kind: r.kind,
            error_kind: r.error_kind,
            stage: r.stage,
            reason: r.reason,
            template: r.template,
            count: r.count,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            sample_id: r.sample_id,
            sample_job_id: r.sample_job_id,
            sample_error: r.sample_error,
        })
        .collect();
    Ok((groups, total))
}

/// What only a poison item's detail view shows.
#[derive(Debug, Clone)]
pub struct PoisonExtra {
    pub payload: Vec<u8>,
    pub headers: serde_json::Value,
    pub content_type: Option<String>,
    pub source_queue: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
}

pub async fn poison_extra(pool: &PgPool, item_id: Uuid) -> StoreResult<Option<PoisonExtra>> {
    Ok(sqlx::query_as!(
        PoisonExtra,
        "SELECT payload, headers, content_type, source_queue, deleted_at FROM dlq_poison WHERE item_id = $1",
        item_id
    )
    .fetch_optional(pool)
    .await?)
}

/// One row of a job's history.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

pub async fn job_events(pool: &PgPool, job_id: Uuid) -> StoreResult<Vec<EventRow>> {
    Ok(sqlx::query_as!(
        EventRow,
        "SELECT id, from_status, to_status, actor, detail, at FROM job_events WHERE job_id = $1 ORDER BY id",
        job_id
    )
    .fetch_all(pool)
    .await?)
}

/// When the job's dead-letter message was last seen on `jobs.dlq`.
pub async fn dlq_message_seen(pool: &PgPool, job_id: Uuid) -> StoreResult<Option<(DateTime<Utc>, Option<String>)>> {
    let seen = sqlx::query!("SELECT seen_at, reason FROM dlq_job_messages WHERE job_id = $1", job_id)
        .fetch_optional(pool)
        .await?;
    Ok(seen.map(|s| (s.seen_at, s.reason)))
}

/// DLQ size by kind and the oldest item's DLQ time, for /metrics.
#[derive(Debug, Clone, Default)]
pub struct DlqStats {
    pub jobs: i64,
    pub poison: i64,
    pub oldest: Option<DateTime<Utc>>,
    pub now: Option<DateTime<Utc>>,
}

pub async fn stats(pool: &PgPool) -> StoreResult<DlqStats> {
    Ok(sqlx::query_as!(
        DlqStats,
        r#"SELECT count(*) FILTER (WHERE kind = 'job') AS "jobs!", count(*) FILTER (WHERE kind = 'poison') AS "poison!",
                  min(dlq_at) AS oldest, now() AS now
           FROM dlq_items WHERE status = 'DLQ'"#
    )
    .fetch_one(pool)
    .await?)
}
