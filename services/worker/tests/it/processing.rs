use std::time::Duration;

use job_model::{ExecutionEvent, JobPriority};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use serde_json::Value;

use crate::platform::{Platform, Setup, text_invoice};

const STAGES: [&str; 8] = [
    "upload",
    "validation",
    "classification",
    "extraction",
    "analysis",
    "criteria_detection",
    "ticket_generation",
    "storage",
];

#[tokio::test]
async fn documents_reach_their_final_states_with_every_stage_timed() {
    let platform = Platform::start(Setup::default()).await;
    let good = platform.submit_document("good-1", "invoice.txt", &text_invoice("INV-1"), "HIGH").await;
    let broken =
        platform.submit_document("broken-1", "broken.pdf", b"%PDF-1.7\n1 0 obj <</Type /Catalog", "NORMAL").await;

    let done = platform.wait_final(&good, Duration::from_secs(60)).await;
    assert_eq!(done["job_status"], "COMPLETED", "{done}");
    assert_eq!(done["attempt"], 1);
    let stages: Vec<&str> = done["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, STAGES, "all eight, in order");
    for stage in done["stages"].as_array().unwrap() {
        assert_eq!(stage["status"], "succeeded", "{stage}");
        assert!(stage["duration_ms"].as_f64().unwrap() >= 0.0);
    }
    assert!(done["started_at"].is_string() && done["completed_at"].is_string());

    let failed = platform.wait_final(&broken, Duration::from_secs(60)).await;
    assert_eq!(failed["job_status"], "FAILED", "a broken PDF is a permanent failure: {failed}");
    assert_eq!(failed["attempt"], 1, "no retry for a permanent error");
    assert_eq!(failed["retry_count"], 0);
    assert_eq!(failed["error_stage"], "validation");
    assert!(failed["error_message"].as_str().is_some_and(|m| !m.is_empty()));

    // One execution event per attempt, carrying every stage's timing.
    let events =
        platform.broker.drain(&platform.broker.topology.metrics_events_queue(), Duration::from_millis(500)).await;
    let events: Vec<ExecutionEvent> = events.iter().map(|d| serde_json::from_slice(&d.data).unwrap()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let good_event = events.iter().find(|e| e.job_id.to_string() == good).unwrap();
    assert_eq!(good_event.stages.len(), 8);
    assert_eq!(good_event.outcome.as_str(), "completed");
    assert!(good_event.total_duration_ms >= good_event.stages.iter().map(|s| s.duration_ms).sum::<f64>() * 0.99);
    let broken_event = events.iter().find(|e| e.job_id.to_string() == broken).unwrap();
    assert_eq!(broken_event.outcome.as_str(), "failed");
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name)).unwrap()
}

#[tokio::test]
async fn the_known_invoice_is_stored_with_exactly_its_fields() {
    let platform = Platform::start(Setup::default()).await;
    let job = platform.submit_document("known-pdf", "invoice_en.pdf", &sample("invoice_en.pdf"), "NORMAL").await;
    let encrypted = platform.submit_document("locked-pdf", "encrypted.pdf", &sample("encrypted.pdf"), "NORMAL").await;
    assert_eq!(platform.wait_final(&job, Duration::from_secs(60)).await["job_status"], "COMPLETED");

    let row: (String, Option<String>, Option<String>, Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT document_type, invoice_number, supplier, total_cents, currency FROM document_results WHERE job_id = $1::uuid",
    )
    .bind(&job)
    .fetch_one(&platform.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "invoice".into(),
            Some("BL-2026-117".into()),
            Some("Brightline Software Ltd".into()),
            Some(1_440_000),
            Some("EUR".into())
        )
    );
    let tickets: Vec<String> = sqlx::query_scalar("SELECT rule FROM tickets WHERE job_id = $1::uuid")
        .bind(&job)
        .fetch_all(&platform.db.pool)
        .await
        .unwrap();
    assert!(tickets.contains(&"high_total".to_owned()), "{tickets:?}");

    let locked = platform.wait_final(&encrypted, Duration::from_secs(60)).await;
    assert_eq!(locked["job_status"], "FAILED");
    assert!(locked["error_message"].as_str().unwrap().contains("encrypted"), "{locked}");
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_and_the_next_job_completes() {
    let platform = Platform::start(Setup::default()).await;
    let topology = &platform.broker.topology;
    let conn = platform.broker.connect().await;
    let channel = conn.create_channel().await.unwrap();
    let unknown_job = serde_json::to_vec(&job_model::JobEnvelope::for_job(job_model::ProcessDocument {
        job_id: uuid::Uuid::now_v7(),
        document: job_model::DocumentRef {
            document_id: "ghost".into(),
            filename: "ghost.txt".into(),
            blob_path: "in/ghost.txt".into(),
            file_size: 5,
            priority: JobPriority::Normal,
            tags: Default::default(),
        },
    }))
    .unwrap();
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe not json".to_vec(),
        br#"{"schema_version": 99, "type": "process_document"}"#.to_vec(),
        unknown_job,
    ];
    for body in &bodies {
        channel
            .basic_publish(
                topology.jobs_exchange().into(),
                "normal".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let job = platform.submit_document("after-poison", "invoice.txt", &text_invoice("INV-2"), "NORMAL").await;
    assert_eq!(platform.wait_final(&job, Duration::from_secs(60)).await["job_status"], "COMPLETED");

    let dead = test_support::eventually(Duration::from_secs(30), "three poison messages on jobs.dlq", || async {
        let n = platform.broker.ready_count(&topology.dlq_queue()).await;
        (n >= 3).then_some(n)
    })
    .await;
    assert_eq!(dead, 3);
    let messages = platform.broker.drain(&topology.dlq_queue(), Duration::from_millis(200)).await;
    let mut reasons: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|m| {
            let headers = m.properties.headers().as_ref().unwrap().inner();
            match headers.get("x-dlq-reason") {
                Some(lapin::types::AMQPValue::LongString(s)) => (s.to_string(), m.data.clone()),
                other => panic!("no reason: {other:?}"),
            }
        })
        .collect();
    reasons.sort();
    let codes: Vec<&str> = reasons.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(codes, vec!["not_json", "unknown_job", "unsupported_schema_version"]);
    assert_eq!(reasons[0].1, bodies[0], "the payload is kept as it was");
    let workers_alive: Value = platform
        .http
        .get(format!("http://127.0.0.1:{}/healthz", platform.workers[0].port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(workers_alive["status"], "ok");
    let doc: Value = platform
        .http
        .get(format!("http://127.0.0.1:{}/api/openapi.json", platform.workers[0].port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(paths, ["/api/openapi.json", "/healthz", "/metrics", "/readyz"], "the worker documents its routes too");
}
