//! Every validation rule: the status, the error code, and that nothing was stored.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{API_KEY, TestApp, assert_error, valid_body};

fn with(key: &str, value: Value) -> Value {
    let mut body = valid_body("doc-invalid");
    body[key] = value;
    body
}

fn without(key: &str) -> Value {
    let mut body = valid_body("doc-invalid");
    body.as_object_mut().unwrap().remove(key);
    body
}

async fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(app.job_count().await, 0, "no job row");
    assert_eq!(app.outbox_count().await, 0, "no outbox row");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM job_events").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(events, 0, "no event row");
}

#[tokio::test]
async fn invalid_fields_are_refused_with_their_codes() {
    let app = TestApp::spawn().await;
    let many_tags: serde_json::Map<String, Value> = (0..33).map(|i| (format!("t{i}"), json!("v"))).collect();
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        ("missing document_id", without("document_id"), StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        ("missing filename", without("filename"), StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        ("missing blob_path", without("blob_path"), StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        ("missing file_size", without("file_size"), StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        ("empty document_id", with("document_id", json!("  ")), StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        (
            "document_id a number",
            with("document_id", json!(42)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field_type",
        ),
        (
            "oversized document_id",
            with("document_id", json!("d".repeat(256))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "field_too_long",
        ),
        (
            "oversized filename",
            with("filename", json!("f".repeat(256))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "field_too_long",
        ),
        (
            "oversized blob_path",
            with("blob_path", json!("b".repeat(1025))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "field_too_long",
        ),
        (
            "control char in filename",
            with("filename", json!("a\u{1b}b.pdf")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_characters",
        ),
        (
            "path in filename",
            with("filename", json!("../a.pdf")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_characters",
        ),
        ("file_size zero", with("file_size", json!(0)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_size"),
        ("file_size negative", with("file_size", json!(-1)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_size"),
        ("file_size fractional", with("file_size", json!(10.5)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_size"),
        ("file_size a string", with("file_size", json!("10")), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field_type"),
        (
            "file_size over the limit",
            with("file_size", json!(50 * 1024 * 1024 + 1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "file_too_large",
        ),
        ("unknown priority", with("priority", json!("URGENT")), StatusCode::UNPROCESSABLE_ENTITY, "invalid_priority"),
        ("numeric priority", with("priority", json!(1)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_priority"),
        ("33 tags", with("tags", Value::Object(many_tags)), StatusCode::UNPROCESSABLE_ENTITY, "too_many_tags"),
        ("non-string tag value", with("tags", json!({"n": 1})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_tag"),
        ("null tag value", with("tags", json!({"n": null})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_tag"),
        ("tags not an object", with("tags", json!(["a", "b"])), StatusCode::UNPROCESSABLE_ENTITY, "invalid_tag"),
        (
            "absolute blob_path",
            with("blob_path", json!("/etc/passwd")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        (
            "dot-dot blob_path",
            with("blob_path", json!("in/../../secret")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        (
            "backslash blob_path",
            with("blob_path", json!("in\\a.pdf")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        (
            "NUL in blob_path",
            with("blob_path", json!("in/a\u{0}.pdf")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        (
            "control char in blob_path",
            with("blob_path", json!("in/a\n.pdf")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        (
            "blob_path escaping via empty segment",
            with("blob_path", json!("in//a.pdf")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        (
            "URL-like blob_path",
            with("blob_path", json!("file:///etc/passwd")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_blob_path",
        ),
        ("unknown field", with("priorty", json!("HIGH")), StatusCode::UNPROCESSABLE_ENTITY, "unknown_field"),
        ("not an object", json!(["document_id"]), StatusCode::BAD_REQUEST, "invalid_json"),
    ];
    for (name, body, status, code) in cases {
        let response = app.submit(&body).await;
        let got = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{name}: {answer}");
        assert_eq!(answer["status"], "error", "{name}");
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/process-async"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{\"document_id\": ")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = TestApp::spawn().await;
    let mut body = valid_body("doc-big");
    body["tags"] = json!({"padding": "x".repeat(70 * 1024)});
    let response = app.submit(&body).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Chunked, without Content-Length: the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .http
        .post(app.url("/api/process-async"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_chunked_body_that_never_ends_is_a_413_and_the_rest_is_not_read() {
    let app = TestApp::spawn().await;
    let (body, sent) = crate::raw_multipart::endless(b"{\"document_id\": \"".to_vec(), vec![b'x'; 16 * 1024]);
    let response = app
        .http
        .post(app.url("/api/process-async"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("an answer while the body is still being sent");
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // The server closed the connection instead of draining the endless rest.
    test_support::eventually(std::time::Duration::from_secs(20), "the server to stop reading", || async {
        sent.dropped.load(std::sync::atomic::Ordering::SeqCst).then_some(())
    })
    .await;
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415() {
    let app = TestApp::spawn().await;
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut request =
            app.http.post(app.url("/api/process-async")).bearer_auth(API_KEY).body(valid_body("d").to_string());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        assert_error(request.send().await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn unknown_and_malformed_job_ids() {
    let app = TestApp::spawn().await;
    let unknown = uuid::Uuid::now_v7();
    assert_error(app.get(&format!("/api/job/{unknown}/status")).await, StatusCode::NOT_FOUND, "job_not_found").await;
    assert_error(app.get("/api/job/not-a-uuid/status").await, StatusCode::BAD_REQUEST, "invalid_job_id").await;
    assert_error(
        app.get("/api/job/1%3B%20DROP%20TABLE%20jobs/status").await,
        StatusCode::BAD_REQUEST,
        "invalid_job_id",
    )
    .await;
    assert_error(app.get("/api/nowhere").await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_a_400() {
    let app = TestApp::spawn().await;
    let long = "k".repeat(256);
    for key in [long.as_str(), "   "] {
        assert_error(
            app.submit_with_key(&valid_body("d"), key).await,
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        )
        .await;
    }
    assert_nothing_stored(&app).await;
}
