//! Postgres access for jobs, their events and the outbox. Every write that
//! changes a job's status also writes its `job_events` row in the same
//! transaction.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::job::JOB_COLUMNS;
use crate::outbox::OutboxMessage;
use crate::{JobMetadata, JobPriority, JobStatus, NewJob, StageRecord};

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Opens a pool. `acquire_timeout` bounds how long a request waits for a
/// connection when Postgres is away: the API answers 503 after it.
pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    // Lazy: a service starts (and answers /healthz) while Postgres is still
    // coming up; requests get 503 until it is reachable.
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options))
}

/// What submitting a job did.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    /// A new job was committed together with its outbox message.
    Created(JobMetadata),
    /// The same request was seen before: here is its job.
    Duplicate(JobMetadata),
    /// The idempotency key (or document id, within the window) was used before
    /// with a different request.
    Conflict(JobMetadata),
}

/// How a submission without an explicit idempotency key is de-duplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupPolicy {
    /// A second submission of the same `document_id` within this window
    /// returns the first job. `None` turns the implicit check off.
    pub document_window: Option<Duration>,
}

/// Commits a job, its first event and its outbox message in one transaction,
/// or returns the job an earlier identical request created.
pub async fn submit_job(
    pool: &PgPool,
    job: &NewJob,
    message: &OutboxMessage,
    actor: &str,
    dedup: DedupPolicy,
) -> Result<SubmitOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;

    if job.idempotency_key.is_none()
        && let Some(window) = dedup.document_window
    {
        // Serialise submissions of one document so two concurrent ones
        // cannot both miss each other. The lock ends with the transaction.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('docflow.document:' || $1, 0))")
            .bind(&job.document_id)
            .execute(&mut *tx)
            .await?;
        let earlier = sqlx::query_as::<_, (Uuid, Vec<u8>)>(
            "SELECT job_id, request_hash FROM jobs \
                 WHERE document_id = $1 AND created_at > now() - make_interval(secs => $2) \
                 ORDER BY job_id DESC LIMIT 1",
        )
        .bind(&job.document_id)
        .bind(window.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((job_id, hash)) = earlier {
            tx.rollback().await?;
            return existing_outcome(pool, job_id, &hash, job).await;
        }
    }

    // The job, its first event and its outbox message in one statement: one
    // round trip for the write path every submission takes.
    let created = sqlx::query_as::<_, JobMetadata>(sqlx::AssertSqlSafe(format!(
        "WITH job AS ( \
             INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, tags, status, \
                               max_retries, idempotency_key, request_hash, trace_id, traceparent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'QUEUED', $8, $9, $10, $11, $12) \
             ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
             RETURNING * \
         ), event AS ( \
             INSERT INTO job_events (job_id, from_status, to_status, actor, detail) \
             SELECT job_id, NULL, 'QUEUED', $13, $14 FROM job \
         ), message AS ( \
             INSERT INTO outbox (exchange, routing_key, payload, headers, expiration_ms) \
             SELECT $15, $16, $17, $18, $19 FROM job \
         ) \
         SELECT {JOB_COLUMNS} FROM job"
    )))
    .bind(job.job_id)
    .bind(&job.document_id)
    .bind(&job.filename)
    .bind(&job.blob_path)
    .bind(job.file_size)
    .bind(job.priority.value())
    .bind(job.tags_json())
    .bind(job.max_retries)
    .bind(&job.idempotency_key)
    .bind(&job.request_hash[..])
    .bind(&job.trace_id)
    .bind(&job.traceparent)
    .bind(actor)
    .bind(sqlx::types::Json(serde_json::json!({"priority": job.priority})))
    .bind(&message.exchange)
    .bind(&message.routing_key)
    .bind(&message.payload)
    .bind(sqlx::types::Json(&message.headers))
    .bind(message.expiration.map(|d| d.as_millis() as i64))
    .fetch_optional(&mut *tx)
    .await?;

    let Some(created) = created else {
        // The key is taken: by an earlier request, or by one that committed
        // while this insert waited on it.
        tx.rollback().await?;
        let key = job.idempotency_key.as_deref().unwrap_or_default();
        let (job_id, hash) =
            sqlx::query_as::<_, (Uuid, Vec<u8>)>("SELECT job_id, request_hash FROM jobs WHERE idempotency_key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?;
        return existing_outcome(pool, job_id, &hash, job).await;
    };
    tx.commit().await?;
    Ok(SubmitOutcome::Created(created))
}

async fn existing_outcome(
    pool: &PgPool,
    job_id: Uuid,
    hash: &[u8],
    job: &NewJob,
) -> Result<SubmitOutcome, sqlx::Error> {
    let existing = get_job(pool, job_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok(if hash == job.request_hash { SubmitOutcome::Duplicate(existing) } else { SubmitOutcome::Conflict(existing) })
}

/// Appends one row to a job's history.
pub async fn record_event(
    tx: &mut Transaction<'_, Postgres>,
    job_id: Uuid,
    from: Option<JobStatus>,
    to: JobStatus,
    actor: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO job_events (job_id, from_status, to_status, actor, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(job_id)
        .bind(from.map(JobStatus::as_str))
        .bind(to.as_str())
        .bind(actor)
        .bind(sqlx::types::Json(detail))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn get_job(pool: &PgPool, job_id: Uuid) -> Result<Option<JobMetadata>, sqlx::Error> {
    sqlx::query_as::<_, JobMetadata>(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1")))
        .bind(job_id)
        .fetch_optional(pool)
        .await
}

/// Stage records of every attempt, in pipeline order.
pub async fn job_stages(pool: &PgPool, job_id: Uuid) -> Result<Vec<StageRecord>, sqlx::Error> {
    sqlx::query_as::<_, StageRecord>(
        "SELECT attempt, stage, status, started_at, duration_ms, items_processed, bytes_processed, error \
         FROM job_stages WHERE job_id = $1 ORDER BY attempt, seq",
    )
    .bind(job_id)
    .fetch_all(pool)
    .await
}

/// Filters for listing jobs; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub priority: Option<JobPriority>,
    pub document_id: Option<String>,
}

/// Newest first. `before` is the keyset cursor: the last job id of the
/// previous page (UUIDv7 ids sort by creation time).
pub async fn list_jobs(
    pool: &PgPool,
    filter: &JobFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<JobMetadata>, sqlx::Error> {
    sqlx::query_as::<_, JobMetadata>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM jobs \
         WHERE ($1::text IS NULL OR status = $1) \
           AND ($2::smallint IS NULL OR priority = $2) \
           AND ($3::text IS NULL OR document_id = $3) \
           AND ($4::uuid IS NULL OR job_id < $4) \
         ORDER BY job_id DESC LIMIT $5"
    )))
    .bind(filter.status.map(JobStatus::as_str))
    .bind(filter.priority.map(JobPriority::value))
    .bind(&filter.document_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}
