use clap::Parser;
use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, assert_error, valid_body};

#[tokio::test]
async fn api_routes_need_a_valid_key() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/process-async");
    let none = app.http.post(&url).json(&valid_body("d")).send().await.unwrap();
    assert_error(none, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = app.http.post(&url).bearer_auth("not-the-key").json(&valid_body("d")).send().await.unwrap();
    assert_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let listing = app.http.get(app.url("/api/jobs")).send().await.unwrap();
    assert_error(listing, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.job_count().await, 0);

    // Probes and metrics stay open for the orchestrator and the scraper.
    for path in ["/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        assert_eq!(app.http.get(app.url(path)).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    let app = TestApp::spawn_with(Options {
        args: ["--rate-limit-per-second", "1", "--rate-limit-burst", "2"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    let mut limited = None;
    for i in 0..4 {
        let response = app.get(&format!("/api/jobs?document_id=rl-{i}")).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("a burst of 4 over a limit of 2 is limited");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn the_service_refuses_to_start_without_keys() {
    let config = ingest_api::Config::parse_from(["ingest-api", "--listen-addr", "127.0.0.1:0"]);
    let error = ingest_api::Application::build(config).await.err().expect("no keys, no start");
    assert!(error.to_string().contains("INGEST_API_KEYS"), "{error}");
}

#[tokio::test]
async fn with_keys_configured_insecure_mode_does_not_let_a_wrong_key_in() {
    let app = TestApp::spawn_with(Options { args: vec!["--insecure-no-auth".into()], ..Default::default() }).await;
    let url = app.url("/api/process-async");
    let wrong = app.http.post(&url).bearer_auth("not-the-key").json(&valid_body("d")).send().await.unwrap();
    assert_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let none = app.http.post(&url).json(&valid_body("d")).send().await.unwrap();
    assert_error(none, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.job_count().await, 0);
    assert_eq!(app.submit(&valid_body("d")).await.status(), StatusCode::ACCEPTED, "the right key still works");
}
