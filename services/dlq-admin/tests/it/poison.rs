use std::time::Duration;

use job_model::{JobEnvelope, JobPriority, ProcessDocument};
use lapin::options::{BasicGetOptions, BasicNackOptions};
use serde_json::{Value, json};
use test_support::eventually;
use uuid::Uuid;

use crate::helpers::{DlqJobs, TestApp, World};

async fn wait_for_items(app: &TestApp, query: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(30), &format!("{n} DLQ items for {query:?}"), || async {
        let list = app.read(&format!("/api/dlq?{query}")).await;
        let items = list["items"].as_array().unwrap().clone();
        (items.len() == n).then_some(items)
    })
    .await
}

/// Takes the queue's message and gives it back until the quorum queue's
/// delivery limit dead-letters it (x-death: delivery_limit), as a message
/// that keeps crashing its consumers would be.
async fn nack_until_dead_lettered(world: &World, queue: &str) {
    let conn = world.broker.connect().await;
    let channel = conn.create_channel().await.unwrap();
    let mut rejected = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match channel.basic_get(queue.into(), BasicGetOptions::default()).await.unwrap() {
            Some(m) => {
                m.delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
                rejected += 1;
            }
            None if rejected > job_model::topology::DELIVERY_LIMIT => break,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker never dead-lettered the message ({rejected} rejections)"
        );
    }
    let _ = conn.close(200, "done".into()).await;
}

/// A job waiting for its message (`status` QUEUED or RETRYING), and that
/// message's body.
async fn waiting_job(world: &World, status: &str) -> (Uuid, Vec<u8>) {
    let [job_id] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    sqlx::query("UPDATE jobs SET status = $2, dlq_at = NULL WHERE job_id = $1")
        .bind(job_id)
        .bind(status)
        .execute(world.pool())
        .await
        .unwrap();
    let job = job_store::jobs::get_job(world.pool(), job_id).await.unwrap().unwrap();
    (job_id, JobEnvelope::for_job(ProcessDocument::from(&job)).encode())
}

async fn importer_connected(app: &TestApp) {
    eventually(Duration::from_secs(30), "the importer to consume", || async {
        let metrics = app.get("/metrics", None).await.text().await.ok()?;
        metrics.contains("docflow_dlq_importer_connected 1").then_some(())
    })
    .await
}

#[tokio::test]
async fn a_poison_message_on_jobs_dlq_shows_up_in_the_list_with_its_reason() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    importer_connected(&app).await;
    let dlx = world.broker.topology.dlq_exchange();
    // As the worker dead-letters a body it cannot parse.
    world
        .publish(
            &dlx,
            "normal",
            b"{\"schema_version\": 1, oops\x1b[2J",
            &[
                ("x-dlq-reason", "not_json"),
                ("x-error", "body is not valid JSON: key must be a string at line 1 column 24\0"),
            ],
        )
        .await;

    let items = wait_for_items(&app, "kind=poison", 1).await;
    let item = &items[0];
    assert_eq!(item["kind"], "poison");
    assert_eq!(item["dlq_reason"], "not_json");
    assert_eq!(item["poison"]["reason"], "not_json");
    assert_eq!(item["poison"]["payload"], "{\"schema_version\": 1, oops\\u{1b}[2J");
    assert_eq!(item["error_message"], "body is not valid JSON: key must be a string at line 1 column 24\\u{0}");

    // Imported means taken off the queue: Postgres holds it now.
    assert_eq!(world.broker.ready_count(&world.broker.topology.dlq_queue()).await, 0);
    let id = item["id"].as_str().unwrap();
    let detail = app.read(&format!("/api/dlq/{id}")).await;
    assert_eq!(detail["poison"]["headers"]["x-dlq-reason"], "not_json");
    assert_eq!(detail["poison"]["source_queue"], Value::Null);
    assert!(detail["poison"]["payload_base64"].as_str().unwrap().starts_with("eyJzY2hlbWFfdmVyc2lvbiI6"));

    let groups = app.read("/api/dlq/groups").await;
    assert_eq!(groups["groups"][0]["title"], "poison message: not_json");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("docflow_dlq_size{kind=\"poison\"} 1"), "{metrics}");
    assert!(metrics.contains("docflow_dlq_messages_imported_total{outcome=\"poison\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_message_the_broker_dead_lettered_is_imported_with_the_death_reason() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    importer_connected(&app).await;
    // A message no consumer can get through: nacked and requeued until the
    // quorum queue's delivery limit dead-letters it (x-death: delivery_limit).
    world.publish(&world.broker.topology.jobs_exchange(), "low", b"\x00\x01 not a job", &[]).await;
    let queue = world.broker.topology.job_queue(JobPriority::Low);
    nack_until_dead_lettered(&world, &queue).await;

    let items = wait_for_items(&app, "kind=poison", 1).await;
    assert_eq!(items[0]["dlq_reason"], "delivery_limit", "{}", items[0]);
    let detail = app.read(&format!("/api/dlq/{}", items[0]["id"].as_str().unwrap())).await;
    assert_eq!(detail["poison"]["source_queue"], queue);
    assert!(detail["poison"]["headers"]["x-death"].is_array());
    assert_eq!(detail["poison"]["payload"], "\\u{0}\\u{1} not a job");
}

#[tokio::test]
async fn a_dlq_jobs_own_dead_letter_is_noted_not_duplicated_and_stale_ones_are_dropped() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    importer_connected(&app).await;
    let [parked, retried] = DlqJobs { count: 2, ..Default::default() }.insert(world.pool()).await[..] else { panic!() };
    let retry = app.retry(retried).await;
    assert_eq!(retry.status(), 200);
    let unknown = Uuid::now_v7();

    let dlx = world.broker.topology.dlq_exchange();
    for (job_id, reason) in [(parked, "retries_exhausted"), (retried, "retries_exhausted"), (unknown, "unknown_job")] {
        let job = job_store::jobs::get_job(world.pool(), job_id).await.unwrap();
        let body = match &job {
            Some(j) => JobEnvelope::for_job(ProcessDocument::from(j)).encode(),
            None => json!({"schema_version": 1, "type": "process_document", "job_id": job_id, "document_id": "ghost",
                           "filename": "g.pdf", "blob_path": "g.pdf", "file_size": 1, "priority": "LOW",
                           "enqueued_at": "2026-11-29T00:00:00Z"})
            .to_string()
            .into_bytes(),
        };
        let id = job_id.to_string();
        world.publish(&dlx, "normal", &body, &[("x-job-id", &id), ("x-attempt", "4"), ("x-dlq-reason", reason)]).await;
    }

    // The unknown job becomes a poison item naming it; the parked one is
    // noted; the retried one's late dead letter is dropped.
    let poison = wait_for_items(&app, "kind=poison", 1).await;
    assert_eq!(poison[0]["dlq_reason"], "unknown_job");
    assert_eq!(poison[0]["job_id"], unknown.to_string());
    assert_eq!(poison[0]["document_id"], "ghost");
    eventually(Duration::from_secs(30), "the parked job's dead letter to be noted", || async {
        let detail = app.read(&format!("/api/dlq/{parked}")).await;
        detail["dlq_message"]["seen_at"].is_string().then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "every dead letter to be consumed", || async {
        (world.broker.ready_count(&world.broker.topology.dlq_queue()).await == 0).then_some(())
    })
    .await;
    let jobs = app.list_ids("kind=job").await;
    assert_eq!(jobs, vec![parked.to_string()], "one item per job, nothing for the retried one");
    assert_eq!(world.status_of(retried).await, "QUEUED");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for outcome in ["seen", "stale", "poison"] {
        assert!(
            metrics.contains(&format!("docflow_dlq_messages_imported_total{{outcome=\"{outcome}\"}} 1")),
            "{outcome}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_waiting_job_whose_message_the_broker_dead_lettered_is_parked_and_retryable() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    importer_connected(&app).await;
    // A job waiting on its queue (QUEUED) whose message hits the delivery
    // limit: ten SIGTERMs that each gave it back, say.
    let (job_id, body) = waiting_job(&world, "QUEUED").await;
    let id = job_id.to_string();
    world
        .publish(&world.broker.topology.jobs_exchange(), "normal", &body, &[("x-job-id", &id), ("x-attempt", "5")])
        .await;
    nack_until_dead_lettered(&world, &world.broker.topology.job_queue(JobPriority::Normal)).await;

    eventually(Duration::from_secs(30), "the job parked in the DLQ", || async {
        (world.status_of(job_id).await == "DLQ").then_some(())
    })
    .await;
    let items = wait_for_items(&app, "kind=job", 1).await;
    assert_eq!(items[0]["id"], id, "a job item, not a poison one: {}", items[0]);
    assert_eq!(items[0]["dlq_reason"], "delivery_limit", "{}", items[0]);
    assert_eq!(app.read("/api/dlq?kind=poison").await["items"].as_array().unwrap().len(), 0);

    // An admin can bring it back.
    let response = app.retry(job_id).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(world.status_of(job_id).await, "QUEUED");
}

#[tokio::test]
async fn a_waiting_job_whose_message_a_relay_parked_as_unroutable_is_parked_and_retryable() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    importer_connected(&app).await;
    let (job_id, body) = waiting_job(&world, "RETRYING").await;
    let id = job_id.to_string();
    let tier = world.broker.topology.retry_exchange(Duration::from_secs(7));
    // As broker::OutboxRelay parks a message it could never route.
    world
        .publish(
            &world.broker.topology.dlq_exchange(),
            "normal",
            &body,
            &[
                ("x-job-id", &id),
                ("x-attempt", "3"),
                ("x-dlq-reason", "unroutable"),
                ("x-error", "unroutable after 8 tries: no queue bound for it"),
                ("x-original-exchange", &tier),
                ("x-original-routing-key", "normal"),
            ],
        )
        .await;

    eventually(Duration::from_secs(30), "the job parked in the DLQ", || async {
        (world.status_of(job_id).await == "DLQ").then_some(())
    })
    .await;
    let items = wait_for_items(&app, "kind=job", 1).await;
    assert_eq!(items[0]["id"], id, "a job item, not a poison one: {}", items[0]);
    assert_eq!(items[0]["dlq_reason"], "unroutable", "{}", items[0]);
    assert!(items[0]["error_message"].as_str().unwrap().contains(&tier), "{}", items[0]);

    let response = app.retry(job_id).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(world.status_of(job_id).await, "QUEUED");
}
