//! The admin audit trail: one row per change (per batch, for bulk ones),
//! written in the transaction that makes the change.

use crate::error::StoreResult;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Admin actions, as stored in `admin_audit.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Retry,
    Delete,
    BulkRetry,
    BulkDelete,
    Purge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Delete => "delete",
            Action::BulkRetry => "bulk_retry",
            Action::BulkDelete => "bulk_delete",
            Action::Purge => "purge",
        }
    }

    pub fn parse(raw: &str) -> Option<Action> {
        [Action::Retry, Action::Delete, Action::BulkRetry, Action::BulkDelete, Action::Purge]
            .into_iter()
            .find(|a| a.as_str() == raw)
    }
}

/// A row to write.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub action: Action,
    pub reason: &'a str,
    pub request_id: Uuid,
    pub target: Option<String>,
    pub filter: Option<serde_json::Value>,
    pub matched: i32,
    pub affected: i32,
    pub status_before: Option<&'a str>,
    pub status_after: Option<&'a str>,
    pub job_ids: Vec<Uuid>,
}

pub async fn record(tx: &mut Transaction<'_, Postgres>, entry: &NewEntry<'_>) -> StoreResult<i64> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO admin_audit (actor, action, reason, request_id, target, filter, matched, affected, \
                                  status_before, status_after, job_ids) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        entry.actor,
        entry.action.as_str(),
        entry.reason,
        entry.request_id,
        entry.target,
        entry.filter,
        entry.matched,
        entry.affected,
        entry.status_before,
        entry.status_after,
        &entry.job_ids,
    )
    .fetch_one(&mut **tx)
    .await?)
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub reason: String,
    pub request_id: Uuid,
    pub target: Option<String>,
    pub filter: Option<serde_json::Value>,
    pub matched: i32,
    pub affected: i32,
    pub status_before: Option<String>,
    pub status_after: Option<String>,
    pub job_ids: Vec<Uuid>,
}

/// Newest first, before the id `before` (the keyset cursor).
pub async fn list(
    pool: &PgPool,
    action: Option<Action>,
    actor: Option<&str>,
    target: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<EntryRow>> {
    Ok(sqlx::query_as!(
        EntryRow,
        "SELECT id, at, actor, action, reason, request_id, target, filter, matched, affected, status_before, \
                status_after, job_ids \
         FROM admin_audit \
         WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR actor = $2) \
           AND ($3::text IS NULL OR target = $3 OR $3 = ANY(job_ids::text[])) \
           AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $5",
        action.map(Action::as_str),
        actor,
        target,
        before,
        limit,
    )
    .fetch_all(pool)
    .await?)
}
