use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{DlqJobs, World};

#[tokio::test]
async fn a_bulk_retry_of_1000_by_filter_from_two_instances_requeues_each_job_once() {
    let world = World::new().await;
    // Two dlq-admin processes' worth of state on one database: small
    // batches so their requests interleave, no pacing.
    let args = ["--bulk-batch-size", "50", "--bulk-retry-rate-per-second", "0"];
    let a = world.app(&args).await;
    let b = world.app(&args).await;
    let targets = DlqJobs { count: 1000, stage: "upload", document_prefix: "bulk", ..Default::default() }
        .insert(world.pool())
        .await;
    let others = DlqJobs {
        count: 200,
        stage: "analysis",
        error_kind: "timeout",
        error: "analysis timed out",
        document_prefix: "other",
        ..Default::default()
    }
    .insert(world.pool())
    .await;

    let body = json!({"reason": "blob store repaired", "filter": {"stage": "upload", "error_contains": "timed out"}});
    let dry: Value = a
        .post("/api/dlq/retry", &json!({"reason": "check", "dry_run": true, "filter": {"stage": "upload"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dry["matched"], 1000, "{dry}");

    // Four requests at once, two per instance.
    let (r1, r2, r3, r4) = tokio::join!(
        a.post("/api/dlq/retry", &body),
        b.post("/api/dlq/retry", &body),
        a.post("/api/dlq/retry", &body),
        b.post("/api/dlq/retry", &body)
    );
    let mut retried = 0;
    for response in [r1, r2, r3, r4] {
        assert_eq!(response.status(), 200);
        let result: Value = response.json().await.unwrap();
        retried += result["retried"].as_u64().unwrap();
    }
    assert_eq!(retried, 1000, "the requests together requeued each job once");

    assert_eq!(world.count("SELECT count(*) FROM jobs WHERE status = 'QUEUED'").await, 1000);
    assert_eq!(world.count("SELECT count(*) FROM jobs WHERE status = 'DLQ'").await, 200);
    let queued: Vec<Uuid> = sqlx::query_scalar("SELECT job_id FROM jobs WHERE status = 'QUEUED' ORDER BY job_id")
        .fetch_all(world.pool())
        .await
        .unwrap();
    let mut expected = targets.clone();
    expected.sort();
    assert_eq!(queued, expected, "exactly the filtered jobs");
    for id in &others {
        assert_eq!(world.status_of(*id).await, "DLQ");
    }
    // One QUEUED event per job, never two.
    let events: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT job_id, count(*) FROM job_events WHERE to_status = 'QUEUED' GROUP BY job_id")
            .fetch_all(world.pool())
            .await
            .unwrap();
    assert_eq!(events.len(), 1000);
    assert!(events.iter().all(|(_, n)| *n == 1), "a job requeued twice");

    // Exactly 1000 messages reach the queues, one per job.
    world.outbox_drained().await;
    assert_eq!(world.queued_messages().await, 1000);
    let delivered = world
        .broker
        .drain(&world.broker.topology.job_queue(job_model::JobPriority::Normal), std::time::Duration::from_millis(200))
        .await;
    let mut per_job: HashMap<String, usize> = HashMap::new();
    for d in &delivered {
        *per_job.entry(crate::helpers::header_map(d)["x-job-id"].clone()).or_default() += 1;
    }
    assert_eq!(per_job.len(), 1000);
    assert!(per_job.values().all(|n| *n == 1));

    // Audited per batch, in the batches' transactions: the counts add up.
    let audit = world.audit_rows().await;
    assert!(audit.iter().all(|r| r["action"] == "bulk_retry" && r["reason"] == "blob store repaired"));
    assert_eq!(audit.iter().map(|r| r["affected"].as_i64().unwrap()).sum::<i64>(), 1000);
    let audited: usize = audit.iter().map(|r| r["job_ids"].as_array().unwrap().len()).sum();
    assert_eq!(audited, 1000);
    assert!(audit.iter().all(|r| r["affected"].as_i64().unwrap() <= 50), "batches are bounded");
}

#[tokio::test]
async fn a_bulk_retry_by_ids_reports_those_it_did_not_retry() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let jobs = DlqJobs { count: 3, ..Default::default() }.insert(world.pool()).await;
    sqlx::query("UPDATE jobs SET status = 'COMPLETED' WHERE job_id = $1")
        .bind(jobs[2])
        .execute(world.pool())
        .await
        .unwrap();
    let unknown = Uuid::now_v7();
    let ids = json!([jobs[0], jobs[1], jobs[2], unknown, jobs[0]]);
    let result: Value =
        app.post("/api/dlq/retry", &json!({"reason": "listed", "job_ids": ids})).await.json().await.unwrap();
    assert_eq!(result["retried"], 2, "{result}");
    let not: Vec<(String, Value)> = result["not_retried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["job_id"].as_str().unwrap().to_owned(), n["status"].clone()))
        .collect();
    assert_eq!(not, vec![(jobs[2].to_string(), json!("COMPLETED")), (unknown.to_string(), Value::Null)]);

    // A limit stops a bulk retry early, and says so.
    let more = DlqJobs { count: 4, document_prefix: "more", ..Default::default() }.insert(world.pool()).await;
    let limited: Value =
        app.post("/api/dlq/retry", &json!({"reason": "some", "filter": {}, "limit": 3})).await.json().await.unwrap();
    assert_eq!((limited["retried"].as_u64(), limited["limit_reached"].as_bool()), (Some(3), Some(true)));
    assert_eq!(world.status_of(more[3]).await, "DLQ", "oldest first: the newest stays");
}

#[tokio::test]
async fn bulk_retries_are_paced_by_the_replay_rate_limit() {
    let world = World::new().await;
    // 100 jobs/s with a burst of one 20-job batch: 120 jobs cannot take
    // less than (120 - 20) / 100 = 1 s. A lower bound only: never flaky.
    let app = world.app(&["--bulk-batch-size", "20", "--bulk-retry-rate-per-second", "100"]).await;
    DlqJobs { count: 120, ..Default::default() }.insert(world.pool()).await;
    let started = Instant::now();
    let result: Value =
        app.post("/api/dlq/retry", &json!({"reason": "paced", "filter": {}})).await.json().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(result["retried"], 120, "{result}");
    assert_eq!(result["batches"], 6);
    assert!(elapsed.as_millis() >= 950, "120 jobs at 100/s took only {elapsed:?}");
}
