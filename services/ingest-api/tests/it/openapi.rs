use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let listed: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("post", "/api/process-async"),
        ("post", "/api/documents"),
        ("get", "/api/job/{job_id}/status"),
        ("get", "/api/jobs"),
        ("get", "/api/job/{job_id}/result"),
        ("get", "/api/tickets"),
        ("post", "/api/tickets/{ticket_id}/resolve"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(listed, expected);

    // Every route answers at its documented method (none is 404 or 405).
    for (method, path) in &expected {
        let path = path.replace("{job_id}", &uuid::Uuid::now_v7().to_string()).replace("{ticket_id}", "1");
        let request = match method.as_str() {
            "get" => app.http.get(app.url(&path)),
            _ => app.http.post(app.url(&path)),
        };
        let status = request.send().await.unwrap().status();
        assert!(status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {status}");
        if path.starts_with("/api/job/") {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} exists and needs a key");
        }
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn the_document_is_also_available_without_a_server() {
    let doc = serde_json::to_value(ingest_api::openapi()).unwrap();
    assert!(doc["paths"]["/api/process-async"]["post"].is_object());
}
