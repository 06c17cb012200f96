//! Bulk DLQ runs (retry or delete a selection, batch by batch): one row per
//! run (`migrations/*_dlq_bulk_runs.sql`), advanced in each batch's own
//! transaction, so the progress is what has committed, the same on every
//! replica, and kept across restarts.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::audit::Action;
use crate::error::StoreResult;

#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub run_id: Uuid,
    pub action: Action,
    pub actor: &'a str,
    pub reason: &'a str,
    pub selection: serde_json::Value,
    pub matched: i64,
}

#[derive(Debug, Clone)]
pub struct RunRow {
    pub run_id: Uuid,
    pub action: String,
    pub actor: String,
    pub reason: String,
    pub selection: serde_json::Value,
    pub matched: i64,
    pub done: i64,
    pub batches: i32,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub limit_reached: bool,
    pub error: Option<String>,
    /// Unfinished, and no batch committed for longer than the caller's
    /// patience: the process running it has most likely gone away.
    pub stalled: bool,
}

pub async fn start(pool: &PgPool, run: &NewRun<'_>) -> StoreResult<()> {
    sqlx::query!(
        "INSERT INTO dlq_bulk_runs (run_id, action, actor, reason, selection, matched) VALUES ($1, $2, $3, $4, $5, $6)",
        run.run_id,
        run.action.as_str(),
        run.actor,
        run.reason,
        run.selection,
        run.matched,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// One more batch of `changed` items, in that batch's transaction.
pub async fn advance(tx: &mut Transaction<'_, Postgres>, run_id: Uuid, changed: i64) -> StoreResult<()> {
    sqlx::query!(
        "UPDATE dlq_bulk_runs SET done = done + $2, batches = batches + 1, updated_at = now() WHERE run_id = $1",
        run_id,
        changed,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn finish(pool: &PgPool, run_id: Uuid, limit_reached: bool, error: Option<&str>) -> StoreResult<()> {
    sqlx::query!(
        "UPDATE dlq_bulk_runs SET finished_at = now(), updated_at = now(), limit_reached = $2, error = $3 \
         WHERE run_id = $1",
        run_id,
        limit_reached,
        error,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A run, with `stalled` set when it is unfinished and its last batch is
/// older than `stall_after_seconds`.
pub async fn get(pool: &PgPool, run_id: Uuid, stall_after_seconds: f64) -> StoreResult<Option<RunRow>> {
    Ok(sqlx::query_as!(
        RunRow,
        r#"SELECT run_id, action, actor, reason, selection, matched, done, batches, started_at, updated_at,
                  finished_at, limit_reached, error,
                  (finished_at IS NULL AND updated_at < now() - make_interval(secs => $2)) AS "stalled!"
           FROM dlq_bulk_runs WHERE run_id = $1"#,
        run_id,
        stall_after_seconds,
    )
    .fetch_optional(pool)
    .await?)
}

/// The newest runs first.
pub async fn recent(pool: &PgPool, limit: i64, stall_after_seconds: f64) -> StoreResult<Vec<RunRow>> {
    Ok(sqlx::query_as!(
        RunRow,
        r#"SELECT run_id, action, actor, reason, selection, matched, done, batches, started_at, updated_at,
                  finished_at, limit_reached, error,
                  (finished_at IS NULL AND updated_at < now() - make_interval(secs => $2)) AS "stalled!"
           FROM dlq_bulk_runs ORDER BY started_at DESC LIMIT $1"#,
        limit,
        stall_after_seconds,
    )
    .fetch_all(pool)
    .await?)
}
