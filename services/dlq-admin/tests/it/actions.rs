use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{DlqJobs, World, assert_error, events, header_map, insert_poison};

#[tokio::test]
async fn a_retry_requeues_through_the_outbox_with_a_fresh_budget_and_is_audited() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };

    let response = app.retry(job).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["from"], "DLQ");
    assert_eq!(body["to"], "QUEUED");
    assert_eq!(body["next_attempt"], 5, "attempt numbering continues: {body}");

    let (status, retry_count, attempt): (String, i32, i32) =
        sqlx::query_as("SELECT status, retry_count, attempt FROM jobs WHERE job_id = $1")
            .bind(job)
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), retry_count, attempt), ("QUEUED", 0, 4));

    let history = events(&world, job).await;
    let (to, actor, detail) = history.last().unwrap();
    assert_eq!(to, "QUEUED");
    assert!(actor.starts_with("dlq-admin:token-"), "{actor}");
    assert_eq!(detail["reason"], "test retry");
    assert_eq!(detail["previous"]["retry_count"], 3);
    assert_eq!(detail["previous"]["error_stage"], "upload");
    assert_eq!(history.len(), 2, "history kept: {history:?}");

    // The relay publishes it to the job's priority queue, with the next attempt number.
    world.outbox_drained().await;
    let delivered = world
        .broker
        .drain(&world.broker.topology.job_queue(job_model::JobPriority::Normal), Duration::from_millis(200))
        .await;
    assert_eq!(delivered.len(), 1);
    let headers = header_map(&delivered[0]);
    assert_eq!(headers["x-job-id"], job.to_string());
    assert_eq!(headers["x-attempt"], "5");
    assert_eq!(job_model::JobEnvelope::decode(&delivered[0].data).unwrap().job_id(), job);

    let audit = world.audit_rows().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "retry");
    assert_eq!(audit[0]["reason"], "test retry");
    assert_eq!(audit[0]["target"], job.to_string());
    assert_eq!(audit[0]["status_before"], "DLQ");
    assert_eq!(audit[0]["status_after"], "QUEUED");
    assert_eq!(audit[0]["affected"], 1);
    assert_eq!(audit[0]["id"], body["audit_id"]);

    // Twice in a row: the second is a 409 that changes nothing.
    let again = assert_error(app.retry(job).await, StatusCode::CONFLICT, "conflict").await;
    assert!(again["error"]["message"].as_str().unwrap().contains("QUEUED"), "{again}");
    assert_eq!(world.audit_rows().await.len(), 1);
    assert_eq!(world.count("SELECT count(*) FROM outbox").await, 0);
    assert_eq!(events(&world, job).await.len(), 2);

    // The metrics count it and the DLQ is empty again.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("docflow_dlq_retries_issued_total{mode=\"single\"} 1"), "{metrics}");
    assert!(metrics.contains("docflow_dlq_size{kind=\"job\"} 0"), "{metrics}");
}

#[tokio::test]
async fn a_delete_keeps_the_row_and_history_and_is_audited() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    let poison = insert_poison(world.pool(), "not_json", b"{oops", "1 hour").await;

    let response = app.delete(&format!("/api/dlq/{job}"), &json!({"reason": "document withdrawn"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["kind"].as_str(), body["to"].as_str()), (Some("job"), Some("DELETED")));
    assert_eq!(world.status_of(job).await, "DELETED");
    let history = events(&world, job).await;
    assert_eq!(history.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["DLQ", "DELETED"]);
    assert_eq!(history[1].2["reason"], "document withdrawn");

    let response = app.delete(&format!("/api/dlq/{poison}"), &json!({"reason": "garbage"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["kind"], "poison");

    // Gone from the list, still there to inspect.
    assert!(app.list_ids("").await.is_empty());
    let detail = app.read(&format!("/api/dlq/{job}")).await;
    assert_eq!(detail["in_dlq"], false);
    assert_eq!(detail["item"]["status"], "DELETED");
    let detail = app.read(&format!("/api/dlq/{poison}")).await;
    assert_eq!(detail["item"]["status"], "DELETED");
    assert!(detail["poison"]["deleted_at"].is_string());

    // Twice: 409; a poison item cannot be retried: 409.
    assert_error(
        app.delete(&format!("/api/dlq/{job}"), &json!({"reason": "again"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_error(app.retry(poison).await, StatusCode::CONFLICT, "conflict").await;

    let audit = world.audit_rows().await;
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|a| a["action"] == "delete" && a["status_after"] == "DELETED"));
    assert_eq!(audit[0]["target"], job.to_string());
    assert_eq!(audit[1]["target"], poison.to_string());
}

#[tokio::test]
async fn jobs_not_in_the_dlq_are_409_and_unknown_ids_404() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    sqlx::query("UPDATE jobs SET status = 'COMPLETED' WHERE job_id = $1")
        .bind(job)
        .execute(world.pool())
        .await
        .unwrap();
    let body = assert_error(app.retry(job).await, StatusCode::CONFLICT, "conflict").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("COMPLETED"));
    assert_error(
        app.delete(&format!("/api/dlq/{job}"), &json!({"reason": "x"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;

    let unknown = Uuid::now_v7();
    assert_error(app.retry(unknown).await, StatusCode::NOT_FOUND, "job_not_found").await;
    assert_error(
        app.get(&format!("/api/dlq/{unknown}"), Some(crate::helpers::READ_TOKEN)).await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    )
    .await;
    assert!(world.audit_rows().await.is_empty(), "refused changes are not audited as changes");
}

#[tokio::test]
async fn an_item_shows_its_history_and_stage_timings() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs {
        error_kind: "timeout",
        stage: "extraction",
        error: "extraction timed out after 60s",
        ..Default::default()
    }
    .insert(world.pool())
    .await[..] else {
        panic!()
    };
    for attempt in 1..=2 {
        sqlx::query(
            "INSERT INTO job_attempts (job_id, attempt, stages) VALUES ($1, $2, ARRAY[ \
                 ROW(1, 'upload', 'succeeded', now(), 0, 1.5, NULL, NULL, NULL)::stage_timing, \
                 ROW(2, 'extraction', 'failed', now(), 1.5, 60000, NULL, NULL, 'timed out')::stage_timing])",
        )
        .bind(job)
        .bind(attempt)
        .execute(world.pool())
        .await
        .unwrap();
    }
    let detail = app.read(&format!("/api/dlq/{job}")).await;
    assert_eq!(detail["in_dlq"], true);
    assert_eq!(detail["item"]["kind"], "job");
    assert_eq!(detail["item"]["error_kind"], "timeout");
    assert_eq!(detail["item"]["error_stage"], "extraction");
    assert_eq!(detail["item"]["dlq_reason"], "retries_exhausted");
    assert_eq!(detail["item"]["retry_count"], 3);
    assert_eq!(detail["job"]["filename"], "invoice.pdf");
    assert_eq!(detail["events"].as_array().unwrap().len(), 1);
    assert_eq!(detail["events"][0]["to_status"], "DLQ");
    let stages = detail["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 4);
    assert_eq!((stages[3]["attempt"].as_i64(), stages[3]["stage"].as_str()), (Some(2), Some("extraction")));
}

#[tokio::test]
async fn a_retry_of_a_job_quarantined_for_crashing_its_workers_starts_with_no_crashes() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    // As the worker parks a job that killed WORKER_MAX_CRASHES workers.
    sqlx::query("UPDATE jobs SET crash_count = 3 WHERE job_id = $1").bind(job).execute(world.pool()).await.unwrap();

    assert_eq!(app.retry(job).await.status(), StatusCode::OK);
    let crashes: i32 = sqlx::query_scalar("SELECT crash_count FROM jobs WHERE job_id = $1")
        .bind(job)
        .fetch_one(world.pool())
        .await
        .unwrap();
    assert_eq!(crashes, 0, "otherwise its next claim quarantines it again at once");
}
