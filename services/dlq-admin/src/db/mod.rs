//! dlq-admin's SQL. Job status changes go through [`changes`], which checks
//! each move with [`job_model::JobStatus`] and writes the `job_events` row,
//! the outbox message and the `admin_audit` row in the caller's transaction.

pub mod audit;
pub mod changes;
pub mod import;
pub mod items;

use chrono::{DateTime, Utc};
use job_model::{JobPriority, JobStatus};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;

use crate::domain::{DlqFilter, ItemKind};

/// A job's last move into DLQ: what failed (`error_kind`) and why it was
/// parked (`reason`), as the worker wrote them in the event's detail.
pub(crate) const LAST_DLQ_EVENT: &str = "LEFT JOIN LATERAL ( \
        SELECT e.detail FROM job_events e WHERE e.job_id = j.job_id AND e.to_status = 'DLQ' ORDER BY e.id DESC LIMIT 1 \
    ) ev ON true";

/// The error kind of a job item (the worker's code, e.g. `blob_store_unavailable`).
pub(crate) const JOB_ERROR_KIND: &str = "coalesce(ev.detail->>'error_kind', ev.detail->>'reason', 'unknown')";

/// When a job item entered the DLQ. `dlq_at` is set with the status by the
/// worker; `updated_at` only guards against a row written some other way.
pub(crate) const JOB_DLQ_AT: &str = "coalesce(j.dlq_at, j.updated_at)";

/// The filter ($1–$9, see [`bind_filter`]) over `jobs j` joined with [`LAST_DLQ_EVENT`].
pub(crate) fn job_filter_sql() -> String {
    format!(
        "($1::text IS NULL OR $1::text = 'job') \
         AND ($2::text IS NULL OR strpos(lower(coalesce(j.error_message, '')), lower($2::text)) > 0) \
         AND ($3::text IS NULL OR j.error_stage = $3::text) \
         AND ($4::smallint IS NULL OR j.priority = $4::smallint) \
         AND ($5::text IS NULL OR j.document_id = $5::text) \
         AND ($6::timestamptz IS NULL OR {JOB_DLQ_AT} >= $6::timestamptz) \
         AND ($7::timestamptz IS NULL OR {JOB_DLQ_AT} < $7::timestamptz) \
         AND ($8::text IS NULL OR dlq_fingerprint({JOB_ERROR_KIND}, j.error_stage, j.error_message) = $8::text) \
         AND ($9::text IS NULL OR ev.detail->>'reason' = $9::text)"
    )
}

/// The same filter over `dlq_poison p`. Stage and priority belong to jobs,
/// so a filter on either leaves poison items out.
pub(crate) const POISON_FILTER: &str = "($1::text IS NULL OR $1::text = 'poison') \
     AND ($2::text IS NULL OR strpos(lower(coalesce(p.error_message, '')), lower($2::text)) > 0) \
     AND $3::text IS NULL \
     AND $4::smallint IS NULL \
     AND ($5::text IS NULL OR p.document_id = $5::text) \
     AND ($6::timestamptz IS NULL OR p.dlq_at >= $6::timestamptz) \
     AND ($7::timestamptz IS NULL OR p.dlq_at < $7::timestamptz) \
     AND ($8::text IS NULL OR dlq_fingerprint('poison', p.reason, p.error_message) = $8::text) \
     AND ($9::text IS NULL OR p.reason = $9::text)";

/// Binds a filter as $1–$9, in the order [`job_filter_sql`] and
/// [`POISON_FILTER`] use them.
pub(crate) fn bind_filter<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    f: &DlqFilter,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    query
        .bind(f.kind.map(ItemKind::as_str))
        .bind(f.error_contains.clone())
        .bind(f.stage.clone())
        .bind(f.priority.map(JobPriority::value))
        .bind(f.document_id.clone())
        .bind(f.since)
        .bind(f.until)
        .bind(f.fingerprint.clone())
        .bind(f.reason.clone())
}

/// The statuses a job may leave for `to`, as a conditional UPDATE lists them.
pub(crate) fn sources_of(to: JobStatus) -> Vec<&'static str> {
    JobStatus::sources_of(to).into_iter().map(JobStatus::as_str).collect()
}

/// Postgres's clock, so that cut-offs agree with the `now()` rows were stamped with.
pub async fn db_now_minus_days(pool: &sqlx::PgPool, days: u32) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT now() - make_interval(days => $1)").bind(days as i32).fetch_one(pool).await
}
