//! Auth, the OpenAPI document, /metrics and the probes.

use std::collections::BTreeSet;

use clap::Parser;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{READ_TOKEN, TestApp, WRITE_TOKEN, mixed_events};

const API_ROUTES: [&str; 7] = [
    "/api/metrics/report",
    "/api/metrics/stages",
    "/api/metrics/bottlenecks",
    "/api/executions",
    "/api/executions/0190a1b2-0000-7000-8000-000000000000",
    "/api/queues",
    "/api/alerts",
];

#[tokio::test]
async fn api_routes_need_a_token_and_probes_do_not() {
    let app = TestApp::spawn().await;
    for route in API_ROUTES {
        let none = app.http.get(app.url(route)).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{route}");
        let body: Value = none.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let wrong = app.http.get(app.url(route)).bearer_auth("nope").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{route}");
        for token in [READ_TOKEN, WRITE_TOKEN] {
            let status = app.http.get(app.url(route)).bearer_auth(token).send().await.unwrap().status();
            assert!(status == StatusCode::OK || status == StatusCode::NOT_FOUND, "{route} with {token}: {status}");
        }
    }
    for open in ["/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        assert_eq!(app.http.get(app.url(open)).send().await.unwrap().status(), StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn the_service_refuses_to_start_without_tokens_unless_told() {
    let db = test_support::TestDb::new().await;
    let base = ["metrics-tracker", "--listen-addr", "127.0.0.1:0", "--database-url", &db.url];
    let refused = metrics_tracker::Application::build(metrics_tracker::Config::parse_from(base)).await;
    assert!(refused.err().unwrap().to_string().contains("ADMIN_TOKENS"));
    let mut open: Vec<&str> = base.to_vec();
    open.push("--insecure-no-auth");
    assert!(metrics_tracker::Application::build(metrics_tracker::Config::parse_from(open)).await.is_ok());
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let doc = app.json("/api/openapi.json").await;
    let listed: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        "/api/metrics/report",
        "/api/metrics/stages",
        "/api/metrics/bottlenecks",
        "/api/executions",
        "/api/executions/{job_id}",
        "/api/queues",
        "/api/alerts",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
    ]
    .into_iter()
    .map(|p| ("get".to_owned(), p.to_owned()))
    .collect();
    assert_eq!(listed, expected);
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    for schema in ["Report", "StagesReport", "BottleneckReport", "ExecutionList", "QueueStats", "AlertsResponse"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert_eq!(serde_json::to_value(metrics_tracker::openapi()).unwrap()["paths"], doc["paths"]);
}

#[tokio::test]
async fn metrics_expose_durations_outcomes_and_queue_state() {
    let app = TestApp::spawn().await;
    let events = mixed_events(30, 21);
    app.publish(&events).await;
    app.consumed(events.len() as u64, 0, 0).await;
    let body = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();

    let count = |prefix: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    // One observation per attempt, and one per stage timing under another
    // name: no sum over a label counts anything twice.
    assert_eq!(count("docflow_job_duration_seconds_count{"), events.len() as f64);
    let stage_timings: usize = events.iter().map(|e| e.stages.len()).sum();
    assert_eq!(count("docflow_stage_duration_seconds_count{"), stage_timings as f64);
    assert_eq!(count("docflow_job_attempts_total{"), events.len() as f64);
    let completed = events.iter().filter(|e| e.outcome.as_str() == "completed").count();
    assert_eq!(count("docflow_job_attempts_total{outcome=\"completed\""), completed as f64);
    let first_attempts = events.iter().filter(|e| e.attempt == 1).count();
    assert_eq!(count("docflow_queue_wait_seconds_count{"), first_attempts as f64);
    for series in [
        "docflow_queue_jobs{priority=\"normal\",state=\"running\"}",
        "docflow_queue_wait_recent_seconds{priority=\"high\",quantile=\"0.95\"}",
        "docflow_queue_oldest_job_age_seconds{priority=\"low\"}",
        "docflow_metrics_consumer_connected 1",
        "docflow_http_request_duration_seconds",
        "docflow_build_info{service=\"metrics-tracker\",version=\"",
        "process_resident_memory_bytes ",
    ] {
        assert!(body.contains(series), "missing {series} in\n{body}");
    }
    assert!(!body.contains("docflow_dlq_size"), "the DLQ's size is dlq-admin's to export:\n{body}");
    // Label values in lower case, whatever the event's JSON spelled.
    assert!(!body.lines().any(|l| l.contains("priority=\"HIGH\"")), "{body}");
    assert!(app.metric("docflow_queue_wait_recent_seconds{priority=\"high\",quantile=\"0.95\"}").await > 0.0);
}
