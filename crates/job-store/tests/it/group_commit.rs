//! Several attempts recorded in one statement: each is checked against its
//! own lease and attempt, and only the ones that hold write anything.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use job_model::{AttemptOutcome, JobStatus, OutboxMessage, StageTiming};
use job_store::lifecycle::{self, AttemptRecord, ClaimOutcome};
use test_support::TestDb;
use uuid::Uuid;

use crate::outputs::{expire_lease, record, submit};

fn stage(seq: i16, error: Option<&str>) -> StageTiming {
    StageTiming {
        seq,
        stage: format!("stage-{seq}"),
        status: if error.is_some() { "failed" } else { "succeeded" }.into(),
        started_at: Utc::now(),
        offset_ms: 0.0,
        duration_ms: 1.5,
        items_processed: 1,
        bytes_processed: 10,
        error: error.map(str::to_owned),
    }
}

fn message(job_id: Uuid, n: u32) -> OutboxMessage {
    let mut m = OutboxMessage::new(
        "docflow.events".into(),
        format!("{job_id}/{n}"),
        vec![n as u8],
        BTreeMap::from([("x-n".to_owned(), n.to_string())]),
    );
    m.expiration = (n == 1).then(|| Duration::from_millis(1500));
    m
}

/// A record with two stages, two messages and an error on retries.
fn full_record(job_id: Uuid, attempt: i32, outcome: AttemptOutcome) -> AttemptRecord {
    let failed = outcome != AttemptOutcome::Completed;
    AttemptRecord {
        error_message: failed.then(|| "stage-1 timed out".to_owned()),
        error_stage: failed.then(|| "stage-1".to_owned()),
        stages: vec![stage(0, None), stage(1, failed.then_some("timed out"))],
        messages: vec![message(job_id, 1), message(job_id, 2)],
        detail: serde_json::json!({"attempt": attempt}),
        ..record(job_id, attempt, outcome)
    }
}

async fn claim(db: &TestDb, job_id: Uuid, worker: &str) {
    let claimed = crate::outputs::claim(&db.pool, job_id, worker, None).await;
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "{claimed:?}");
}

async fn count(db: &TestDb, table: &str, job_id: Uuid) -> i64 {
    let sql = match table {
        "outbox" => "SELECT count(*) FROM outbox WHERE routing_key LIKE $1::text || '/%'",
        "job_events" => {
            "SELECT count(*) FROM job_events WHERE job_id = $1::text::uuid AND actor = 'w1' AND from_status = 'PROCESSING'"
        }
        "job_stages" => "SELECT count(*) FROM job_stages WHERE job_id = $1::text::uuid",
        "document_results" => "SELECT count(*) FROM document_results WHERE job_id = $1::text::uuid",
        "tickets" => "SELECT count(*) FROM tickets WHERE job_id = $1::text::uuid",
        other => panic!("no count for {other}"),
    };
    sqlx::query_scalar(sql).bind(job_id.to_string()).fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn a_group_records_each_attempt_that_holds_its_lease_and_only_those() {
    let db = TestDb::new().await;
    let (done, retrying, lost) = (submit(&db).await, submit(&db).await, submit(&db).await);
    for job_id in [done, retrying, lost] {
        claim(&db, job_id, "w1").await;
    }
    // `lost`'s lease expired and another worker took it over.
    expire_lease(&db, lost).await;
    claim(&db, lost, "w2").await;

    let records = [
        full_record(done, 1, AttemptOutcome::Completed),
        full_record(lost, 1, AttemptOutcome::Completed),
        full_record(retrying, 1, AttemptOutcome::Retrying),
    ];
    let claim = Some(Duration::from_secs(60));
    let recorded =
        lifecycle::record_attempts(&db.pool, "w1", &records.iter().collect::<Vec<_>>(), claim).await.unwrap();
    let recorded: Vec<Option<Vec<i64>>> = recorded.into_iter().map(|r| r.map(|r| r.outbox_ids)).collect();
    assert_eq!(recorded.iter().map(Option::is_some).collect::<Vec<_>>(), vec![true, false, true], "in the order given");
    // Each recorded attempt learns the ids of its own messages, in order,
    // for its relay's handover; the claim keeps the relays' polls off them.
    for (job_id, ids) in [(done, &recorded[0]), (retrying, &recorded[2])] {
        let rows: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox WHERE routing_key LIKE $1 ORDER BY routing_key")
            .bind(format!("{job_id}/%"))
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(ids.as_ref(), Some(&rows));
    }
    let batch = job_store::outbox::lock_batch(&db.pool, 10).await.unwrap();
    assert!(batch.rows.iter().all(|r| !r.message.routing_key.contains('/')), "claimed rows are not polled");
    drop(batch);

    let pool = &db.pool;
    let status = |job_id| async move { job_store::jobs::get_job(pool, job_id).await.unwrap().unwrap() };
    let d = status(done).await;
    assert_eq!((d.status, d.completed_at.is_some()), (JobStatus::Completed, true));
    let r = status(retrying).await;
    assert_eq!((r.status, r.retry_count, r.error_stage.as_deref()), (JobStatus::Retrying, 1, Some("stage-1")));
    let l = status(lost).await;
    assert_eq!((l.status, l.attempt), (JobStatus::Processing, 2));
    let owner = |job_id: Uuid| async move {
        sqlx::query_scalar::<_, Option<String>>("SELECT lease_owner FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(owner(done).await, None, "the lease is let go");
    assert_eq!(owner(lost).await.as_deref(), Some("w2"), "the other worker's lease is left alone");

    for job_id in [done, retrying] {
        assert_eq!(count(&db, "job_events", job_id).await, 1, "one outcome event by w1");
        assert_eq!(count(&db, "job_stages", job_id).await, 2);
        assert_eq!(count(&db, "document_results", job_id).await, 1);
        assert_eq!(count(&db, "tickets", job_id).await, 1);
        assert_eq!(count(&db, "outbox", job_id).await, 2);
    }
    for table in ["job_events", "job_stages", "document_results", "tickets", "outbox"] {
        assert_eq!(count(&db, table, lost).await, 0, "the attempt that lost its lease wrote nothing to {table}");
    }

    // Messages keep their order (the relay publishes by id) and every field.
    let rows: Vec<(String, Vec<u8>, serde_json::Value, Option<i64>)> = sqlx::query_as(
        "SELECT routing_key, payload, headers, expiration_ms FROM outbox WHERE routing_key LIKE $1 ORDER BY id",
    )
    .bind(format!("{done}/%"))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows[0], (format!("{done}/1"), vec![1], serde_json::json!({"x-n": "1"}), Some(1500)));
    assert_eq!(rows[1], (format!("{done}/2"), vec![2], serde_json::json!({"x-n": "2"}), None));
    let error: Option<String> = sqlx::query_scalar("SELECT error FROM job_stages WHERE job_id = $1 AND seq = 1")
        .bind(retrying)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(error.as_deref(), Some("timed out"));
}

#[tokio::test]
async fn a_stale_attempt_in_the_same_group_as_the_jobs_next_attempt_writes_nothing() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    claim(&db, job_id, "w1").await;
    expire_lease(&db, job_id).await;
    // The same worker claims it again (the reaper queued it while attempt 1
    // hung), and both attempts finish at once.
    claim(&db, job_id, "w1").await;
    let stale = full_record(job_id, 1, AttemptOutcome::Completed);
    let current = full_record(job_id, 2, AttemptOutcome::Completed);
    let recorded = lifecycle::record_attempts(&db.pool, "w1", &[&stale, &current], None).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox WHERE routing_key LIKE $1 ORDER BY id")
        .bind(format!("{job_id}/%"))
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(recorded, vec![None, Some(lifecycle::Recorded { outbox_ids: ids })]);

    let attempts: Vec<i32> = sqlx::query_scalar(
        "SELECT attempt FROM job_stages WHERE job_id = $1 UNION ALL SELECT attempt FROM document_results WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(attempts, vec![2, 2, 2], "only attempt 2's stages and result");
    assert_eq!(count(&db, "outbox", job_id).await, 2, "only attempt 2's messages");
}
