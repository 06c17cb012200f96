//! A submission is one statement, its dedup window checked under the
//! document's advisory lock by `docflow_lock_document_window`: a submission
//! that waited for the lock must see the job its holder committed.

use std::time::Duration;

use job_store::jobs::{self, DedupPolicy, SubmitOutcome};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use test_support::TestDb;
use uuid::Uuid;

use crate::outputs::new_job;

const WINDOW: DedupPolicy = DedupPolicy { document_window: Some(Duration::from_secs(600)) };

async fn submit(db: &TestDb, document_id: &str) -> SubmitOutcome {
    let (job, message) = new_job(document_id);
    let mut connection = db.pool.acquire().await.unwrap();
    jobs::submit_job(&mut connection, &job, &message, "test", WINDOW, None).await.unwrap()
}

async fn jobs_of(db: &TestDb, document_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE document_id = $1")
        .bind(document_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_submission_within_the_window_gets_the_first_job() {
    let db = TestDb::new().await;
    let SubmitOutcome::Created { job: first, .. } = submit(&db, "doc-a").await else { panic!("first is created") };
    match submit(&db, "doc-a").await {
        SubmitOutcome::Duplicate(job) => assert_eq!(job.job_id, first.job_id),
        other => panic!("expected the first job back, got {other:?}"),
    }
    assert_eq!(jobs_of(&db, "doc-a").await, 1);
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&db.pool).await.unwrap();
    assert_eq!(outbox, 1, "the duplicate wrote no message");
}

#[tokio::test]
async fn a_submission_that_waited_for_the_document_lock_sees_what_its_holder_committed() {
    let db = TestDb::new().await;
    // Another submission of the document holds the lock and has written its
    // job, not yet committed.
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut hold = holder.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('docflow.document:' || $1, 0))")
        .bind("doc-b")
        .execute(&mut *hold)
        .await
        .unwrap();
    let holders_job = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, max_retries, \
                           request_hash) \
         VALUES ($1, 'doc-b', 'a.pdf', 'in/a.pdf', 10, 5, 'QUEUED', 3, $2)",
    )
    .bind(holders_job)
    .bind(&Sha256::digest(b"doc-b")[..])
    .execute(&mut *hold)
    .await
    .unwrap();

    // This submission's statement starts now, so its snapshot cannot hold
    // the holder's job; only a lookup after the lock can see it.
    let waiting = tokio::spawn({
        let db_url = db.url.clone();
        async move {
            let mut connection = sqlx::PgConnection::connect(&db_url).await.unwrap();
            let (job, message) = new_job("doc-b");
            jobs::submit_job(&mut connection, &job, &message, "test", WINDOW, None).await.unwrap()
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if blocked == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the submission never waited for the document's lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hold.commit().await.unwrap();

    match waiting.await.unwrap() {
        SubmitOutcome::Duplicate(job) => assert_eq!(job.job_id, holders_job),
        other => panic!("expected the holder's job back, got {other:?}"),
    }
    assert_eq!(jobs_of(&db, "doc-b").await, 1, "one job for the document");
}
