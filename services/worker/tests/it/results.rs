//! What a client reads back over HTTP: the result of a completed job, its
//! tickets, and closing a ticket, through the real ingest-api and worker.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::platform::{API_KEY, Platform, Setup};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name)).unwrap()
}

async fn get(platform: &Platform, path: &str) -> (StatusCode, Value) {
    let response = platform.http.get(platform.api(path)).bearer_auth(API_KEY).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn resolve(platform: &Platform, ticket: &Value, body: &Value) -> (StatusCode, Value) {
    let path = format!("/api/tickets/{}/resolve", ticket["ticket_id"]);
    let response = platform.http.post(platform.api(&path)).bearer_auth(API_KEY).json(body).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_completed_jobs_result_and_tickets_are_read_and_closed_over_http() {
    let platform = Platform::start(Setup::default()).await;
    let job = platform.submit_document("result-pdf", "invoice_en.pdf", &sample("invoice_en.pdf"), "NORMAL").await;
    let broken = platform.submit_document("result-bad", "encrypted.pdf", &sample("encrypted.pdf"), "NORMAL").await;
    assert_eq!(platform.wait_final(&job, Duration::from_secs(60)).await["job_status"], "COMPLETED");

    let (status, body) = get(&platform, &format!("/api/job/{job}/result")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let result = &body["result"];
    assert_eq!(result["classification"]["document_type"], "invoice");
    let fields = &result["fields"];
    assert_eq!(fields["invoice_number"]["value"], "BL-2026-117");
    assert_eq!(fields["total_amount"]["value"], "14400.00", "amounts are decimal strings: {fields}");
    assert_eq!(fields["currency"]["value"], "EUR");
    assert_eq!(fields["supplier"]["value"], "Brightline Software Ltd");
    assert!(fields["invoice_number"]["confidence"].as_f64().unwrap() > 0.0);
    assert_eq!(result["page_count"], 1);
    assert_eq!(result["text"]["needs_ocr"], false);
    assert_eq!(result["findings"][0]["rule"], "high_total");
    let tickets = body["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 1, "{body}");
    assert_eq!((tickets[0]["rule"].as_str(), tickets[0]["ticket_status"].as_str()), (Some("high_total"), Some("OPEN")));

    // The work list holds it; closing it needs a reason, and happens once.
    let (_, open) = get(&platform, "/api/tickets?status=OPEN&rule=high_total").await;
    assert_eq!(open["tickets"].as_array().unwrap().len(), 1, "{open}");
    let ticket = open["tickets"][0].clone();
    let (status, refused) = resolve(&platform, &ticket, &json!({})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("missing_field")));
    let (status, closed) = resolve(&platform, &ticket, &json!({"reason": "approved by finance"})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["ticket"]["ticket_status"], "RESOLVED");
    assert_eq!(closed["ticket"]["resolution"], "approved by finance");
    assert!(closed["ticket"]["resolved_by"].as_str().unwrap().starts_with("key-"), "{closed}");
    let (status, again) = resolve(&platform, &ticket, &json!({"reason": "twice"})).await;
    assert_eq!((status, again["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    let (_, open) = get(&platform, "/api/tickets?status=OPEN").await;
    assert!(open["tickets"].as_array().unwrap().is_empty(), "{open}");

    // A job that did not complete has no result; an unknown one is 404.
    assert_eq!(platform.wait_final(&broken, Duration::from_secs(60)).await["job_status"], "FAILED");
    let (status, body) = get(&platform, &format!("/api/job/{broken}/result")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("job_not_completed")));
    assert!(body["error"]["message"].as_str().unwrap().contains("FAILED"), "{body}");
    let (status, body) = get(&platform, &format!("/api/job/{}/result", uuid::Uuid::now_v7())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("job_not_found")));
    let (status, body) = get(&platform, "/api/tickets?status=NOPE").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    let missing = json!({"ticket_id": 999_999});
    let (status, _) = resolve(&platform, &missing, &json!({"reason": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
