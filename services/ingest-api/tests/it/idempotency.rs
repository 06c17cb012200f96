use std::collections::HashSet;

use job_model::JobPriority;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, TestApp, assert_error, valid_body};

async fn job_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    body["job_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_same_key_twice_yields_one_job_and_a_different_body_is_a_409() {
    let app = TestApp::spawn().await;
    let body = valid_body("doc-idem");
    let first = job_id(app.submit_with_key(&body, "key-1").await).await;

    let again = app.submit_with_key(&body, "key-1").await;
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(job_id(again).await, first);

    let mut changed = body.clone();
    changed["file_size"] = 1.into();
    assert_error(app.submit_with_key(&changed, "key-1").await, StatusCode::CONFLICT, "idempotency_conflict").await;

    assert_eq!(app.job_count().await, 1);
    app.outbox_drained().await;
    assert_eq!(app.broker.ready_count(&app.broker.topology.job_queue(JobPriority::Normal)).await, 1, "one message");
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_job() {
    let app = TestApp::spawn().await;
    let body = valid_body("doc-race");
    let requests = (0..12).map(|_| async { job_id(app.submit_with_key(&body, "race-key").await).await });
    let ids: HashSet<String> = futures::future::join_all(requests).await.into_iter().collect();
    assert_eq!(ids.len(), 1, "every request got the same job");
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn without_a_key_the_document_id_deduplicates_within_the_window() {
    let app = TestApp::spawn().await;
    let body = valid_body("doc-implicit");
    let first = job_id(app.submit(&body).await).await;
    assert_eq!(job_id(app.submit(&body).await).await, first, "same document, same request: same job");

    let mut changed = body.clone();
    changed["priority"] = "HIGH".into();
    assert_error(app.submit(&changed).await, StatusCode::CONFLICT, "idempotency_conflict").await;

    // An explicit key is its own identity, even for a document seen before.
    let keyed = job_id(app.submit_with_key(&body, "explicit").await).await;
    assert_ne!(keyed, first);
    assert_eq!(app.job_count().await, 2);
}

#[tokio::test]
async fn concurrent_requests_for_one_document_create_one_job() {
    let app = TestApp::spawn().await;
    let body = valid_body("doc-implicit-race");
    let requests = (0..12).map(|_| async { job_id(app.submit(&body).await).await });
    let ids: HashSet<String> = futures::future::join_all(requests).await.into_iter().collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn a_zero_window_turns_document_deduplication_off() {
    let app =
        TestApp::spawn_with(Options { args: vec!["--dedup-window-seconds".into(), "0".into()], ..Default::default() })
            .await;
    let body = valid_body("doc-again");
    let a = job_id(app.submit(&body).await).await;
    let b = job_id(app.submit(&body).await).await;
    assert_ne!(a, b);
    assert_eq!(app.job_count().await, 2);
}
