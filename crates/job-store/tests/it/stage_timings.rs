//! Stage timings are one `job_attempts` row per attempt (an array in
//! pipeline order), read back through the `job_stages` view; the migration
//! that introduced them carries over the rows written one per stage before.

use chrono::Utc;
use job_model::{AttemptOutcome, StageTiming};
use job_store::{MIGRATOR, jobs, lifecycle};
use sqlx::migrate::Migrator;
use test_support::TestDb;
use uuid::Uuid;

use crate::outputs::{claim, record, submit};

/// The migration that moved stage timings into arrays.
const PER_ATTEMPT: i64 = 20261204000010;

fn stage(seq: i16, status: &str, error: Option<&str>) -> StageTiming {
    StageTiming {
        seq,
        stage: format!("stage-{seq}"),
        status: status.into(),
        started_at: Utc::now(),
        offset_ms: f64::from(seq) * 2.0,
        duration_ms: 1.25 + f64::from(seq),
        items_processed: i64::from(seq),
        bytes_processed: 100 * i64::from(seq),
        error: error.map(str::to_owned),
    }
}

#[tokio::test]
async fn an_attempts_stages_are_one_row_and_read_back_in_pipeline_order() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    claim(&db.pool, job_id, "w1", None).await;
    // Out of order on purpose: the array is built in pipeline order.
    let stages = vec![stage(2, "failed", Some("timed out")), stage(0, "succeeded", None), stage(1, "succeeded", None)];
    let attempt = lifecycle::AttemptRecord { stages, ..record(job_id, 1, AttemptOutcome::Failed) };
    assert!(lifecycle::record_attempt(&db.pool, "w1", &attempt).await.unwrap());

    let (rows, length): (i64, Option<i32>) = sqlx::query_as(
        "SELECT count(*), max(array_length(stages, 1)) FROM job_attempts WHERE job_id = $1 AND attempt = 1",
    )
    .bind(job_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((rows, length), (1, Some(3)), "one row for the attempt, its three stages in it");
    let order: Vec<i16> = sqlx::query_scalar(
        "SELECT s.seq FROM job_attempts a, unnest(a.stages) WITH ORDINALITY AS s \
         WHERE a.job_id = $1 ORDER BY s.ordinality",
    )
    .bind(job_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(order, [0, 1, 2], "the array itself is in pipeline order");

    let read = jobs::job_stages(&db.pool, job_id).await.unwrap();
    let names: Vec<&str> = read.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["stage-0", "stage-1", "stage-2"]);
    assert_eq!(read[2].status, "failed");
    assert_eq!(read[2].error.as_deref(), Some("timed out"));
    assert_eq!(read[2].duration_ms, 3.25);
    assert_eq!((read[2].items_processed, read[2].bytes_processed), (Some(2), Some(200)));
    assert!(read.iter().all(|s| s.attempt == 1));
}

#[tokio::test]
async fn a_stage_status_other_than_succeeded_or_failed_is_refused() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    claim(&db.pool, job_id, "w1", None).await;
    let attempt = lifecycle::AttemptRecord {
        stages: vec![stage(0, "half-done", None)],
        ..record(job_id, 1, AttemptOutcome::Completed)
    };
    let refused = lifecycle::record_attempt(&db.pool, "w1", &attempt).await;
    assert!(refused.is_err(), "the stage_status domain refuses it: {refused:?}");
    let status: String =
        sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1").bind(job_id).fetch_one(&db.pool).await.unwrap();
    assert_eq!(status, "PROCESSING", "nothing of the attempt was half-written");
}

/// Runs a fixture insert whose only parameter is the job's id.
async fn insert(db: &TestDb, job_id: Uuid, sql: &'static str) {
    sqlx::query(sql).bind(job_id).execute(&db.pool).await.unwrap();
}

#[tokio::test]
async fn the_migration_carries_rows_written_one_per_stage() {
    let db = TestDb::unmigrated().await;
    let before: Vec<_> = MIGRATOR.iter().filter(|m| m.version < PER_ATTEMPT).cloned().collect();
    assert!(before.len() < MIGRATOR.iter().count(), "the migration is embedded");
    Migrator::with_migrations(before).run(&db.pool).await.unwrap();

    let job_id = Uuid::now_v7();
    insert(
        &db,
        job_id,
        "INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, max_retries, \
                           request_hash) \
         VALUES ($1, 'doc', 'a.txt', 'blobs/a', 1, 5, 'COMPLETED', 3, '\\x00')",
    )
    .await;
    // Two attempts, their stages inserted out of order.
    insert(
        &db,
        job_id,
        "INSERT INTO job_stages (job_id, attempt, seq, stage, status, started_at, duration_ms, items_processed, \
                                 bytes_processed, error) VALUES \
         ($1, 1, 1, 'validation', 'failed', now(), 2.5, NULL, NULL, 'boom'), \
         ($1, 1, 0, 'upload', 'succeeded', now(), 1.5, 1, 10, NULL), \
         ($1, 2, 0, 'upload', 'succeeded', now(), 0.5, 1, 10, NULL)",
    )
    .await;
    insert(
        &db,
        job_id,
        "INSERT INTO metric_executions (job_id, attempt, document_id, priority, outcome, worker_id, submitted_at, \
                                        started_at, finished_at, queue_wait_ms, total_duration_ms) \
         VALUES ($1, 1, 'doc', 5, 'retrying', 'w1', now(), now(), now(), 1, 4), \
                ($1, 2, 'doc', 5, 'completed', 'w1', now(), now(), now(), 1, 1)",
    )
    .await;
    insert(
        &db,
        job_id,
        "INSERT INTO metric_stage_timings (job_id, attempt, seq, stage, status, started_at, offset_ms, duration_ms, \
                                           items_processed, bytes_processed, error) VALUES \
         ($1, 1, 1, 'validation', 'failed', now(), 1.5, 2.5, 0, 0, 'boom'), \
         ($1, 1, 0, 'upload', 'succeeded', now(), 0, 1.5, 1, 10, NULL)",
    )
    .await;

    MIGRATOR.run(&db.pool).await.unwrap();

    let stages = jobs::job_stages(&db.pool, job_id).await.unwrap();
    let seen: Vec<(i32, &str, &str)> =
        stages.iter().map(|s| (s.attempt, s.stage.as_str(), s.status.as_str())).collect();
    assert_eq!(seen, [(1, "upload", "succeeded"), (1, "validation", "failed"), (2, "upload", "succeeded")]);
    assert_eq!(stages[1].error.as_deref(), Some("boom"));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "one row per attempt");

    let timings: Vec<(i32, i16, String, f64)> = sqlx::query_as(
        "SELECT attempt, seq, stage, offset_ms FROM metric_stage_timings WHERE job_id = $1 ORDER BY attempt, seq",
    )
    .bind(job_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(timings, [(1, 0, "upload".to_owned(), 0.0), (1, 1, "validation".to_owned(), 1.5)]);
    let empty: i32 = sqlx::query_scalar(
        "SELECT coalesce(array_length(stages, 1), 0) FROM metric_executions WHERE job_id = $1 AND attempt = 2",
    )
    .bind(job_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(empty, 0, "an execution without stage rows keeps an empty array");
}
