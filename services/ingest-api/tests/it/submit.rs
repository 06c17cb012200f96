use std::collections::HashSet;
use std::time::Duration;

use job_model::{JobEnvelope, JobMessage, JobPriority};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, valid_body};

#[tokio::test]
async fn a_high_job_is_queued_in_postgres_and_on_the_high_queue() {
    let app = TestApp::spawn().await;
    let mut body = valid_body("doc-high-1");
    body["priority"] = "high".into();

    let response = app.submit(&body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    let job_id: Uuid = accepted["job_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(accepted["status"], "success", "the seed's shape");
    assert_eq!(accepted["document_id"], "doc-high-1");
    assert_eq!(accepted["priority"], "HIGH");
    assert_eq!(accepted["tracking_url"], location);
    assert_eq!(location, format!("/api/job/{job_id}/status"));

    let (status, priority): (String, i16) = sqlx::query_as("SELECT status, priority FROM jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), priority), ("QUEUED", 1));
    let events: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT from_status, to_status FROM job_events WHERE job_id = $1")
            .bind(job_id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(events, vec![(None, "QUEUED".to_owned())]);

    app.outbox_drained().await;
    let high = app.broker.drain(&app.broker.topology.job_queue(JobPriority::High), Duration::from_millis(200)).await;
    assert_eq!(high.len(), 1, "exactly one message on jobs.high");
    let envelope = JobEnvelope::decode(&high[0].data).unwrap();
    let JobMessage::ProcessDocument(message) = envelope.body;
    assert_eq!(message.job_id, job_id);
    assert_eq!(message.document.blob_path, "incoming/acme/invoice-2026-001.pdf");
    assert_eq!(message.document.priority, JobPriority::High);
    let headers = high[0].properties.headers().as_ref().unwrap();
    assert!(headers.inner().contains_key("x-job-id"));
    assert_eq!(high[0].properties.delivery_mode(), &Some(2), "persistent");
    for other in [JobPriority::Normal, JobPriority::Low] {
        assert_eq!(app.broker.ready_count(&app.broker.topology.job_queue(other)).await, 0, "{other} queue is empty");
    }
}

#[tokio::test]
async fn each_priority_goes_to_its_own_queue() {
    let app = TestApp::spawn().await;
    for (i, priority) in ["LOW", "normal", "High", "low"].iter().enumerate() {
        let mut body = valid_body(&format!("doc-{i}"));
        body["priority"] = (*priority).into();
        assert_eq!(app.submit(&body).await.status(), StatusCode::ACCEPTED);
    }
    let mut without_priority = valid_body("doc-default");
    without_priority.as_object_mut().unwrap().remove("priority");
    assert_eq!(app.submit(&without_priority).await.status(), StatusCode::ACCEPTED);

    app.outbox_drained().await;
    let t = &app.broker.topology;
    assert_eq!(app.broker.ready_count(&t.job_queue(JobPriority::High)).await, 1);
    assert_eq!(app.broker.ready_count(&t.job_queue(JobPriority::Normal)).await, 2, "NORMAL is the default");
    assert_eq!(app.broker.ready_count(&t.job_queue(JobPriority::Low)).await, 2);
}

#[tokio::test]
async fn status_shows_the_job_in_the_seed_shape() {
    let app = TestApp::spawn().await;
    let accepted: Value = app.submit(&valid_body("doc-status")).await.json().await.unwrap();
    let job_id = accepted["job_id"].as_str().unwrap();

    let response = app.get(&format!("/api/job/{job_id}/status")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["status"], "success");
    assert_eq!(status["job_id"], job_id);
    assert_eq!(status["job_status"], "QUEUED");
    assert_eq!(status["priority"], "NORMAL");
    assert_eq!(status["retry_count"], 0);
    assert_eq!(status["tags"]["customer"], "acme");
    for field in ["created_at", "started_at", "completed_at", "error_message", "stages"] {
        assert!(status.get(field).is_some(), "status has {field}: {status}");
    }
    assert_eq!(status["stages"], serde_json::json!([]));
}

#[tokio::test]
async fn concurrent_submissions_each_get_their_own_job_and_message() {
    let app = TestApp::spawn().await;
    let submits = (0..40).map(|i| {
        let app = &app;
        async move {
            let response = app.submit(&valid_body(&format!("doc-c-{i}"))).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let body: Value = response.json().await.unwrap();
            body["job_id"].as_str().unwrap().to_owned()
        }
    });
    let ids: HashSet<String> = futures::future::join_all(submits).await.into_iter().collect();
    assert_eq!(ids.len(), 40);
    app.outbox_drained().await;
    let messages =
        app.broker.drain(&app.broker.topology.job_queue(JobPriority::Normal), Duration::from_millis(200)).await;
    let queued: HashSet<String> =
        messages.iter().map(|m| JobEnvelope::decode(&m.data).unwrap().job_id().to_string()).collect();
    assert_eq!(messages.len(), 40);
    assert_eq!(queued, ids);
}
