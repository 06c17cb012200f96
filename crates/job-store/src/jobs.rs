//! Jobs as the API sees them: submit (job, first event and outbox message
//! in one statement), read, list, and their history. Every write that
//! changes a job's status also writes its `job_events` row in the same
//! transaction.

use std::time::Duration;

use job_model::{JobMetadata, JobPriority, JobStatus, NewJob, OutboxMessage, StageRecord};
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::row::{self, query_jobs};

/// What submitting a job did.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    /// A new job was committed together with its outbox message, whose row
    /// id a writer that publishes it itself deletes it by.
    Created { job: JobMetadata, outbox_id: i64 },
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

/// Commits a job, its first event and its outbox message in one statement
/// (so one transaction and one round trip), or returns the job an earlier
/// identical request created. With a `claim`, the message is handed over:
/// relays keep off it that long, while the caller publishes it
/// (`outbox::settle_handed`).
pub async fn submit_job(
    conn: &mut PgConnection,
    job: &NewJob,
    message: &OutboxMessage,
    actor: &str,
    dedup: DedupPolicy,
    claim: Option<Duration>,
) -> StoreResult<SubmitOutcome> {
    // Without a key, a second submission of the same document within the
    // window returns the first job. `docflow_lock_document_window` (its
    // migration says why it is a function) serialises submissions of one
    // document, so two concurrent ones cannot both miss each other, and
    // looks for the earlier job once the lock is held. The lock lasts until
    // this statement commits.
    let window = dedup.document_window.filter(|_| job.idempotency_key.is_none());
    let tags = serde_json::to_value(&job.document.tags).expect("a string map serialises");
    let detail = serde_json::json!({"priority": job.document.priority});
    let headers = serde_json::to_value(&message.headers).expect("a string map serialises");
    // The job is inserted unless the window holds an earlier one.
    let created = query_jobs!(
        outbox_id = "(SELECT id FROM message)";
        "WITH earlier AS MATERIALIZED ( \
             SELECT docflow_lock_document_window($2, $20::float8) AS job_id WHERE $20::float8 IS NOT NULL \
         ), job AS ( \
             INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, tags, status, \
                               max_retries, idempotency_key, request_hash, trace_id, traceparent) \
             SELECT $1::uuid, $2::text, $3::text, $4::text, $5::int8, $6::int2, $7::jsonb, 'QUEUED', $8::int4, \
                    $9::text, $10::bytea, $11::text, $12::text \
             WHERE NOT EXISTS (SELECT 1 FROM earlier WHERE job_id IS NOT NULL) \
             ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
             RETURNING * \
         ), event AS ( \
             INSERT INTO job_events (job_id, from_status, to_status, actor, detail) \
             SELECT job_id, NULL, 'QUEUED', $13, $14 FROM job \
         ), message AS ( \
             INSERT INTO outbox (exchange, routing_key, payload, headers, expiration_ms, not_before) \
             SELECT $15, $16, $17, $18, $19, now() + make_interval(secs => $21::float8) FROM job \
             RETURNING id \
         ) \
         SELECT ",
        " FROM job",
        job.job_id,
        job.document.document_id,
        job.document.filename,
        job.document.blob_path,
        job.document.file_size,
        job.document.priority.value(),
        tags,
        job.max_retries,
        job.idempotency_key,
        &job.request_hash[..],
        job.trace_id,
        job.traceparent,
        actor,
        detail,
        message.exchange,
        message.routing_key,
        message.payload,
        headers,
        message.expiration.map(|d| d.as_millis() as i64),
        window.map(|w| w.as_secs_f64()),
        claim.map(|c| c.as_secs_f64()),
    )
    .fetch_optional(&mut *conn)
    .await?;

    if let Some(created) = created {
        let outbox_id = created.outbox_id.ok_or_else(|| {
            StoreError::invariant(format!("job {} was created without its outbox row", created.job_id))
        })?;
        return Ok(SubmitOutcome::Created { job: row::job(created)?, outbox_id });
    }
    let earlier = if window.is_some() {
        // The window held an earlier job of the document. Jobs are never
        // deleted, so the newest of the document is still there (looked
        // up without the window: it may have closed since).
        sqlx::query!(
            "SELECT job_id, request_hash FROM jobs WHERE document_id = $1 ORDER BY job_id DESC LIMIT 1",
            job.document.document_id,
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| (r.job_id, r.request_hash))
    } else {
        // The key is taken: by an earlier request, or by one that committed
        // while this insert waited on it.
        let key = job.idempotency_key.as_deref().unwrap_or_default();
        sqlx::query!("SELECT job_id, request_hash FROM jobs WHERE idempotency_key = $1", key)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| (r.job_id, r.request_hash))
    };
    let (job_id, hash) = earlier.ok_or_else(|| {
        StoreError::invariant(format!("job {} was neither created nor found as a duplicate", job.job_id))
    })?;
    existing_outcome(conn, job_id, &hash, job).await
}

async fn existing_outcome(
    conn: &mut PgConnection,
    job_id: Uuid,
    hash: &[u8],
    job: &NewJob,
) -> StoreResult<SubmitOutcome> {
    let existing = get_job(conn, job_id)
        .await?
        .ok_or_else(|| StoreError::invariant(format!("job {job_id} vanished while its submission was replayed")))?;
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
) -> StoreResult<()> {
    sqlx::query!(
        "INSERT INTO job_events (job_id, from_status, to_status, actor, detail) VALUES ($1, $2, $3, $4, $5)",
        job_id,
        from.map(JobStatus::as_str),
        to.as_str(),
        actor,
        detail,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn get_job(db: impl PgExecutor<'_>, job_id: Uuid) -> StoreResult<Option<JobMetadata>> {
    query_jobs!("SELECT ", " FROM jobs WHERE job_id = $1", job_id).fetch_optional(db).await?.map(row::job).transpose()
}

/// The status of each of `ids` that exists.
pub async fn statuses(pool: &PgPool, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, String)>> {
    let rows = sqlx::query!("SELECT job_id, status FROM jobs WHERE job_id = ANY($1)", ids).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|r| (r.job_id, r.status)).collect())
}

/// Stage records of every attempt, in pipeline order. Each attempt's
/// stages are an array in its `job_attempts` row; the `job_stages` view
/// unnests them (a view's columns are nullable to sqlx, hence the `!`).
pub async fn job_stages(pool: &PgPool, job_id: Uuid) -> StoreResult<Vec<StageRecord>> {
    Ok(sqlx::query_as!(
        StageRecord,
        r#"SELECT attempt AS "attempt!", stage AS "stage!", status AS "status!", started_at AS "started_at!",
               duration_ms AS "duration_ms!", items_processed, bytes_processed, error
           FROM job_stages WHERE job_id = $1 ORDER BY attempt, seq"#,
        job_id
    )
    .fetch_all(pool)
    .await?)
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
) -> StoreResult<Vec<JobMetadata>> {
    let rows = query_jobs!(
        "SELECT ",
        " FROM jobs \
         WHERE ($1::text IS NULL OR status = $1) \
           AND ($2::smallint IS NULL OR priority = $2) \
           AND ($3::text IS NULL OR document_id = $3) \
           AND ($4::uuid IS NULL OR job_id < $4) \
         ORDER BY job_id DESC LIMIT $5",
        filter.status.map(JobStatus::as_str),
        filter.priority.map(JobPriority::value),
        filter.document_id,
        before,
        limit,
    )
    .fetch_all(pool)
    .await?;
    row::jobs(rows)
}
