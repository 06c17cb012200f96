//! Reading the DLQ: DLQ job rows and live poison items, as one list.

use crate::error::StoreResult;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{DlqFilter, ItemCursor};
use super::{JOB_DLQ_AT, JOB_ERROR_KIND, LAST_DLQ_EVENT, POISON_FILTER, bind_filter, job_filter_sql};

/// One DLQ item as stored: a job row, or a poison message.
#[derive(Debug, Clone, sqlx::FromRow)]
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

/// Columns of a job item, over `jobs j` and [`LAST_DLQ_EVENT`].
fn job_item_select() -> String {
    format!(
        "SELECT 'job'::text AS kind, j.job_id AS id, j.status, j.job_id AS job_id, j.document_id, j.filename, j.priority, \
                {JOB_ERROR_KIND} AS error_kind, j.error_message, j.error_stage, ev.detail->>'reason' AS reason, \
                j.retry_count, j.attempt, {JOB_DLQ_AT} AS dlq_at, \
                dlq_fingerprint({JOB_ERROR_KIND}, j.error_stage, j.error_message) AS fingerprint, \
                NULL::bytea AS payload, NULL::int AS payload_size \
         FROM jobs j {LAST_DLQ_EVENT}"
    )
}

/// Columns of a poison item; `$preview` is the parameter holding how many
/// payload bytes to return.
fn poison_item_select(preview: &str) -> String {
    format!(
        "SELECT 'poison'::text AS kind, p.item_id AS id, p.status, p.job_id, p.document_id, NULL::text AS filename, \
                NULL::smallint AS priority, 'poison'::text AS error_kind, p.error_message, NULL::text AS error_stage, \
                p.reason, NULL::int AS retry_count, NULL::int AS attempt, p.dlq_at, \
                dlq_fingerprint('poison', p.reason, p.error_message) AS fingerprint, \
                substring(p.payload FROM 1 FOR {preview}) AS payload, octet_length(p.payload) AS payload_size \
         FROM dlq_poison p"
    )
}

/// Newest first, after `cursor`; `limit` rows at most.
pub async fn list(
    pool: &PgPool,
    filter: &DlqFilter,
    cursor: Option<ItemCursor>,
    limit: i64,
    preview_bytes: i32,
) -> StoreResult<Vec<ItemRow>> {
    let sql = format!(
        "SELECT * FROM ( \
             {jobs} WHERE j.status = 'DLQ' AND {job_filter} \
             UNION ALL \
             {poison} WHERE p.status = 'DLQ' AND {POISON_FILTER} \
         ) items \
         WHERE ($11::timestamptz IS NULL OR (dlq_at, id) < ($11::timestamptz, $12::uuid)) \
         ORDER BY dlq_at DESC, id DESC LIMIT $13",
        jobs = job_item_select(),
        job_filter = job_filter_sql(),
        poison = poison_item_select("$10::int"),
    );
    Ok(bind_filter(sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(sql)), filter)
        .bind(preview_bytes)
        .bind(cursor.map(|c| c.dlq_at))
        .bind(cursor.map(|c| c.id))
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// One fingerprint's items.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    let sql = format!(
        "WITH items AS ( \
             {jobs} WHERE j.status = 'DLQ' AND {job_filter} \
             UNION ALL \
             {poison} WHERE p.status = 'DLQ' AND {POISON_FILTER} \
         ), grouped AS ( \
             SELECT fingerprint, min(kind) AS kind, min(error_kind) AS error_kind, min(error_stage) AS stage, \
                    min(reason) AS reason, min(dlq_error_template(error_message)) AS template, count(*) AS count, \
                    min(dlq_at) AS first_seen, max(dlq_at) AS last_seen, \
                    (array_agg(id ORDER BY dlq_at DESC, id DESC))[1] AS sample_id, \
                    (array_agg(job_id ORDER BY dlq_at DESC, id DESC))[1] AS sample_job_id, \
                    (array_agg(error_message ORDER BY dlq_at DESC, id DESC))[1] AS sample_error \
             FROM items GROUP BY fingerprint \
         ) \
         SELECT *, count(*) OVER () AS total_groups FROM grouped ORDER BY count DESC, last_seen DESC, fingerprint LIMIT $11",
        jobs = job_item_select(),
        job_filter = job_filter_sql(),
        poison = poison_item_select("$10::int"),
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        group: GroupRow,
        total_groups: i64,
    }
    let rows = bind_filter(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)), filter)
        .bind(0_i32)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let total = rows.first().map(|r| r.total_groups).unwrap_or(0);
    Ok((rows.into_iter().map(|r| r.group).collect(), total))
}

/// A job as a DLQ item, whatever its status now (it may have been retried).
pub async fn job_item(pool: &PgPool, job_id: Uuid) -> StoreResult<Option<ItemRow>> {
    Ok(sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!("{} WHERE j.job_id = $1", job_item_select())))
        .bind(job_id)
        .fetch_optional(pool)
        .await?)
}

/// A poison item with up to `preview_bytes` of its payload.
pub async fn poison_item(pool: &PgPool, item_id: Uuid, preview_bytes: i32) -> StoreResult<Option<ItemRow>> {
    Ok(sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "{} WHERE p.item_id = $1",
        poison_item_select("$2::int")
    )))
    .bind(item_id)
    .bind(preview_bytes)
    .fetch_optional(pool)
    .await?)
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
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DlqStats {
    pub jobs: i64,
    pub poison: i64,
    pub oldest: Option<DateTime<Utc>>,
    pub now: Option<DateTime<Utc>>,
}

pub async fn stats(pool: &PgPool) -> StoreResult<DlqStats> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM jobs WHERE status = 'DLQ') AS jobs, \
                (SELECT count(*) FROM dlq_poison WHERE status = 'DLQ') AS poison, \
                LEAST((SELECT min({JOB_DLQ_AT}) FROM jobs j WHERE j.status = 'DLQ'), \
                      (SELECT min(dlq_at) FROM dlq_poison WHERE status = 'DLQ')) AS oldest, \
                now() AS now"
    )))
    .fetch_one(pool)
    .await?)
}
