//! The dead-letter queue's SQL (dlq-admin's): items, groups, imports of
//! messages from `jobs.dlq`, status changes and the audit log. Job status
//! changes go through [`changes`], which checks each move with
//! [`job_model::JobStatus`]; the caller writes the `job_events` row, the
//! outbox message and the `admin_audit` row in the same transaction.

pub mod audit;
pub mod bulk_runs;
pub mod changes;
pub mod import;
pub mod items;

use chrono::{DateTime, Utc};
use job_model::{ItemKind, JobPriority, JobStatus};
use serde::Serialize;
use sqlx::Postgres;
use uuid::Uuid;

use crate::error::StoreResult;

/// Which DLQ items a list, a group view, a bulk retry or a purge covers.
/// Every field narrows; an empty filter is the whole DLQ.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DlqFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ItemKind>,
    /// Case-insensitive substring of the error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_contains: Option<String>,
    /// The failing stage (jobs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Jobs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<JobPriority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Dead-lettered at or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Dead-lettered before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Why it was dead-lettered: `retries_exhausted`, `poison_crashes`,
    /// `stage_panicked` for jobs; `not_json`, `unknown_job`,
    /// `delivery_limit`, … for poison messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The list's keyset cursor: the last item's DLQ time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemCursor {
    pub dlq_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ItemCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.dlq_at.timestamp_micros(), self.id.simple())
    }

    /// None for a string [`ItemCursor::encode`] did not make.
    pub fn decode(raw: &str) -> Option<ItemCursor> {
        let (micros, id) = raw.split_once('_')?;
        let dlq_at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros)?;
        let id = Uuid::parse_str(id).ok()?;
        Some(ItemCursor { dlq_at, id })
    }
}

/// A sqlx macro over the DLQ item views (`dlq_items`, `dlq_job_items`,
/// `migrations/*_dlq_item_views.sql`) with a [`DlqFilter`] as $1–$9: the
/// filter's WHERE clause goes between two literal halves of the statement,
/// so the macro sees one literal (joined with `+`) and checks the whole
/// statement at build time; the filter's nine binds come first, then `$arg`s
/// from $10 on. The clause names the views' columns unqualified.
///
/// `filtered!(query_as, Row; "SELECT .. WHERE", "ORDER BY ..."; &filter, x)`,
/// or without the row type for `query` and the like. The part before the
/// filter may be several literals (a caller's macro adding its columns).
macro_rules! filtered {
    ($mac:ident, $out:path; $($before:literal)+, $after:literal; $filter:expr $(, $arg:expr)* $(,)?) => {
        $crate::dlq::filtered!(@expand $mac [$out] $($before)+, $after; $filter $(, $arg)*)
    };
    ($mac:ident; $($before:literal)+, $after:literal; $filter:expr $(, $arg:expr)* $(,)?) => {
        $crate::dlq::filtered!(@expand $mac [] $($before)+, $after; $filter $(, $arg)*)
    };
    (@expand $mac:ident [$($out:path)?] $($before:literal)+, $after:literal; $filter:expr $(, $arg:expr)*) => {{
        let filter: &$crate::dlq::DlqFilter = $filter;
        sqlx::$mac!(
            $($out,)?
            $($before +)+ " ($1::text IS NULL OR kind = $1::text) \
                    AND ($2::text IS NULL OR strpos(lower(coalesce(error_message, '')), lower($2::text)) > 0) \
                    AND ($3::text IS NULL OR error_stage = $3::text) \
                    AND ($4::smallint IS NULL OR priority = $4::smallint) \
                    AND ($5::text IS NULL OR document_id = $5::text) \
                    AND ($6::timestamptz IS NULL OR dlq_at >= $6::timestamptz) \
                    AND ($7::timestamptz IS NULL OR dlq_at < $7::timestamptz) \
                    AND ($8::text IS NULL OR fingerprint = $8::text) \
                    AND ($9::text IS NULL OR reason = $9::text) " + $after,
            filter.kind.map(job_model::ItemKind::as_str),
            filter.error_contains.as_deref(),
            filter.stage.as_deref(),
            filter.priority.map(job_model::JobPriority::value),
            filter.document_id.as_deref(),
            filter.since,
            filter.until,
            filter.fingerprint.as_deref(),
            filter.reason.as_deref()
            $(, $arg)*
        )
    }};
}
pub(crate) use filtered;

/// The statuses a job may leave for `to`, as a conditional UPDATE lists them.
pub(crate) fn sources_of(to: JobStatus) -> Vec<&'static str> {
    JobStatus::sources_of(to).into_iter().map(JobStatus::as_str).collect()
}

/// Postgres's clock, so that cut-offs agree with the `now()` rows were stamped with.
pub async fn db_now_minus_days(pool: &sqlx::PgPool, days: u32) -> StoreResult<DateTime<Utc>> {
    Ok(sqlx::query_scalar!(r#"SELECT now() - make_interval(days => $1) AS "cutoff!""#, days as i32)
        .fetch_one(pool)
        .await?)
}

/// The retention sweep's session advisory lock, held on one connection for
/// the sweep's duration and released with it even if the process dies.
pub struct SweepLock {
    connection: sqlx::pool::PoolConnection<Postgres>,
}

/// `pg_try_advisory_lock` key of the sweep: "docflow.dlq.sweep" as ASCII.
const SWEEP_LOCK_KEY: i64 = 0x646c_715f_7377_6570;

impl SweepLock {
    /// The lock, unless another replica holds it (then `None`).
    pub async fn try_acquire(pool: &sqlx::PgPool) -> StoreResult<Option<SweepLock>> {
        let mut connection = pool.acquire().await?;
        let locked = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "locked!""#, SWEEP_LOCK_KEY)
            .fetch_one(&mut *connection)
            .await?;
        Ok(locked.then_some(SweepLock { connection }))
    }

    pub async fn release(mut self) {
        let unlocked = sqlx::query_scalar!(r#"SELECT pg_advisory_unlock($1) AS "unlocked!""#, SWEEP_LOCK_KEY)
            .fetch_one(&mut *self.connection)
            .await;
        if unlocked.is_err() {
            // The lock lives as long as this session: close it rather than
            // return a connection that still holds it to the pool.
            let _ = self.connection.detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c =
            ItemCursor { dlq_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(), id: Uuid::now_v7() };
        assert_eq!(ItemCursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "x", "12_nope", "x_0193a0c0-0000-7000-8000-000000000000"] {
            assert!(ItemCursor::decode(bad).is_none(), "{bad}");
        }
    }
}
