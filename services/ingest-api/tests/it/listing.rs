use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, valid_body};

#[tokio::test]
async fn pages_walk_every_job_newest_first_without_repeats() {
    let app = TestApp::spawn().await;
    let mut submitted = Vec::new();
    for i in 0..7 {
        let mut body = valid_body(&format!("list-{i}"));
        body["priority"] = if i % 2 == 0 { "HIGH" } else { "LOW" }.into();
        let accepted: Value = app.submit(&body).await.json().await.unwrap();
        submitted.push(accepted["job_id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/jobs?limit=3&cursor={c}"),
            None => "/api/jobs?limit=3".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        let jobs = page["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 3);
        seen.extend(jobs.iter().map(|j| j["job_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    submitted.reverse();
    assert_eq!(seen, submitted, "newest first, each once");

    let high: Value = app.get("/api/jobs?priority=high").await.json().await.unwrap();
    assert_eq!(high["jobs"].as_array().unwrap().len(), 4);
    let one: Value = app.get("/api/jobs?document_id=list-3&status=QUEUED").await.json().await.unwrap();
    let ids: HashSet<&str> =
        one["jobs"].as_array().unwrap().iter().map(|j| j["document_id"].as_str().unwrap()).collect();
    assert_eq!(ids, HashSet::from(["list-3"]));
    let none: Value = app.get("/api/jobs?status=COMPLETED").await.json().await.unwrap();
    assert_eq!(none["jobs"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_filters_are_400s() {
    let app = TestApp::spawn().await;
    for (query, code) in [
        ("status=DONE", "invalid_query"),
        ("priority=URGENT", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("limit=501", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("colour=red", "invalid_query"),
        ("cursor=abc", "invalid_cursor"),
    ] {
        assert_error(app.get(&format!("/api/jobs?{query}")).await, StatusCode::BAD_REQUEST, code).await;
    }
}
