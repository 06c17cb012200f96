use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::World;

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let response = app.get("/api/openapi.json", None).await;
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
        ("get", "/api/dlq"),
        ("get", "/api/dlq/groups"),
        ("get", "/api/dlq/{job_id}"),
        ("post", "/api/dlq/{job_id}/retry"),
        ("delete", "/api/dlq/{job_id}"),
        ("post", "/api/dlq/retry"),
        ("post", "/api/dlq/purge"),
        ("get", "/api/audit"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(listed, expected);
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    for schema in ["DlqItem", "DlqGroups", "ItemDetail", "BulkRetryRequest", "PurgeResult", "AuditList", "ErrorBody"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let served = serde_json::to_value(dlq_admin::openapi()).unwrap();
    assert_eq!(served["paths"], doc["paths"]);
}
