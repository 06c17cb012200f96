//! What the bench reads back from Postgres: the jobs' own timestamps (the
//! latencies), and the server's statistics views (the cost).
//!
//! These are measuring queries against a throw-away database, not part of
//! the job path, so they stay here as plain runtime-checked SQL rather than
//! in crates/job-store (whose queries are the product's).

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{PgPool, Row};

/// One job's timestamps, seconds since the epoch.
#[derive(Debug, Clone)]
pub struct JobTimes {
    pub priority: i16,
    pub status: String,
    pub created: f64,
    pub started: Option<f64>,
    pub completed: Option<f64>,
}

/// Jobs of a phase (their document ids start with `tag`) that are final.
pub async fn final_count(pool: &PgPool, tag: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE document_id LIKE $1 || '%' AND status IN ('COMPLETED', 'FAILED', 'DLQ')",
    )
    .bind(tag)
    .fetch_one(pool)
    .await
}

/// Jobs of a phase still waiting to start.
pub async fn queued_count(pool: &PgPool, tag: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE document_id LIKE $1 || '%' AND status = 'QUEUED'")
        .bind(tag)
        .fetch_one(pool)
        .await
}

/// Executions metrics-tracker has recorded, and outbox rows not yet published:
/// a phase is over when the tracker has caught up and the outbox is empty.
pub async fn trailing_work(pool: &PgPool) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query("SELECT (SELECT count(*) FROM metric_executions), (SELECT count(*) FROM outbox)")
        .fetch_one(pool)
        .await?;
    Ok((row.get(0), row.get(1)))
}

pub async fn job_times(pool: &PgPool, tag: &str) -> sqlx::Result<Vec<JobTimes>> {
    let rows = sqlx::query(
        "SELECT priority, status, extract(epoch FROM created_at)::float8, extract(epoch FROM started_at)::float8, \
                extract(epoch FROM completed_at)::float8 \
         FROM jobs WHERE document_id LIKE $1 || '%'",
    )
    .bind(tag)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| JobTimes {
            priority: r.get(0),
            status: r.get(1),
            created: r.get(2),
            started: r.get(3),
            completed: r.get(4),
        })
        .collect())
}

/// Postgres processes and the database each serves (None: background).
pub async fn pg_backends(pool: &PgPool) -> HashMap<u32, Option<String>> {
    let rows = sqlx::query("SELECT pid, datname::text FROM pg_stat_activity").fetch_all(pool).await.unwrap_or_default();
    rows.into_iter().map(|r| (r.get::<i32, _>(0) as u32, r.get::<Option<String>, _>(1))).collect()
}

/// Counters of one database (pg_stat_database) and of the cluster's WAL
/// (pg_stat_wal: cluster-wide, so shared with every other database).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PgCounters {
    pub xact_commit: i64,
    pub xact_rollback: i64,
    pub tup_returned: i64,
    pub tup_fetched: i64,
    pub tup_inserted: i64,
    pub tup_updated: i64,
    pub tup_deleted: i64,
    pub blks_hit: i64,
    pub blks_read: i64,
    pub wal_records: i64,
    pub wal_bytes: i64,
    pub wal_write: i64,
    pub wal_sync: i64,
}

pub async fn pg_counters(pool: &PgPool) -> sqlx::Result<PgCounters> {
    let r = sqlx::query(
        "SELECT d.xact_commit, d.xact_rollback, d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated, \
                d.tup_deleted, d.blks_hit, d.blks_read, \
                w.wal_records, w.wal_bytes::int8, w.wal_write, w.wal_sync \
         FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    Ok(PgCounters {
        xact_commit: r.get(0),
        xact_rollback: r.get(1),
        tup_returned: r.get(2),
        tup_fetched: r.get(3),
        tup_inserted: r.get(4),
        tup_updated: r.get(5),
        tup_deleted: r.get(6),
        blks_hit: r.get(7),
        blks_read: r.get(8),
        wal_records: r.get(9),
        wal_bytes: r.get(10),
        wal_write: r.get(11),
        wal_sync: r.get(12),
    })
}

/// Per-job database cost over a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PgPerJob {
    /// Committed plus rolled-back transactions (pg_stat_database), less the
    /// generator's own polling queries.
    pub transactions: f64,
    pub rollbacks: f64,
    pub rows_inserted: f64,
    pub rows_updated: f64,
    pub rows_deleted: f64,
    pub rows_returned: f64,
    /// Cluster-wide (pg_stat_wal): other databases' writes are in it too.
    pub wal_records_cluster: f64,
    pub wal_kib_cluster: f64,
    pub wal_fsyncs_cluster: f64,
}

pub fn per_job(before: &PgCounters, after: &PgCounters, jobs: usize, own_queries: u64) -> PgPerJob {
    let n = jobs.max(1) as f64;
    let d = |a: i64, b: i64| (b - a) as f64 / n;
    let r = |x: f64| (x * 100.0).round() / 100.0;
    let xacts = (after.xact_commit + after.xact_rollback - before.xact_commit - before.xact_rollback) as f64
        - own_queries as f64;
    PgPerJob {
        transactions: r(xacts / n),
        rollbacks: r(d(before.xact_rollback, after.xact_rollback)),
        rows_inserted: r(d(before.tup_inserted, after.tup_inserted)),
        rows_updated: r(d(before.tup_updated, after.tup_updated)),
        rows_deleted: r(d(before.tup_deleted, after.tup_deleted)),
        rows_returned: r(d(before.tup_returned, after.tup_returned)),
        wal_records_cluster: r(d(before.wal_records, after.wal_records)),
        wal_kib_cluster: r(d(before.wal_bytes, after.wal_bytes) / 1024.0),
        wal_fsyncs_cluster: r(d(before.wal_sync, after.wal_sync)),
    }
}

/// Server facts for the report.
pub async fn server_settings(pool: &PgPool) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for name in ["server_version", "synchronous_commit", "fsync", "shared_buffers", "shared_preload_libraries"] {
        let v: Option<String> = sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await
            .ok()
            .flatten();
        out.insert(name.to_owned(), serde_json::Value::from(v.unwrap_or_default()));
    }
    serde_json::Value::Object(out)
}
