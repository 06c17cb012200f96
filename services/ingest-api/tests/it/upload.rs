use std::time::Duration;

use job_model::{JobEnvelope, JobMessage, JobPriority};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{API_KEY, Options, TestApp, assert_error};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

async fn upload(app: &TestApp, form: Form) -> reqwest::Response {
    app.http.post(app.url("/api/documents")).bearer_auth(API_KEY).multipart(form).send().await.unwrap()
}

fn form(document_id: &str, bytes: &'static [u8]) -> Form {
    Form::new()
        .text("document_id", document_id.to_owned())
        .text("priority", "high")
        .text("tags", r#"{"source":"scanner"}"#)
        .part("file", Part::bytes(bytes).file_name("scan 01.pdf").mime_str("application/pdf").unwrap())
}

fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() { walk(&p, out) } else { out.push(p) }
        }
    }
    let mut out = Vec::new();
    walk(&app.blob_dir, &mut out);
    out
}

#[tokio::test]
async fn an_upload_is_stored_and_queued() {
    let app = TestApp::spawn().await;
    // With the seed's file_size field, which matches.
    let response = upload(&app, form("scan-1", PDF).text("file_size", PDF.len().to_string())).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["priority"], "HIGH");

    let files = stored_files(&app);
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0]).unwrap(), PDF, "the bytes are in the blob store");

    let status: Value =
        app.get(&format!("/api/job/{}/status", accepted["job_id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(status["filename"], "scan 01.pdf");
    assert_eq!(status["file_size"], PDF.len());
    assert_eq!(status["tags"]["source"], "scanner");

    app.outbox_drained().await;
    let messages =
        app.broker.drain(&app.broker.topology.job_queue(JobPriority::High), Duration::from_millis(200)).await;
    assert_eq!(messages.len(), 1);
    let JobMessage::ProcessDocument(message) = JobEnvelope::decode(&messages[0].data).unwrap().body;
    assert!(
        message.document.blob_path.starts_with("uploads/") && message.document.blob_path.ends_with("/scan_01.pdf"),
        "{}",
        message.document.blob_path
    );
    assert!(files[0].ends_with(&message.document.blob_path), "the message names the stored blob");
}

#[tokio::test]
async fn a_repeated_upload_keeps_one_job_and_one_blob() {
    let app = TestApp::spawn().await;
    let first: Value = upload(&app, form("scan-2", PDF)).await.json().await.unwrap();
    let second = upload(&app, form("scan-2", PDF)).await;
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(stored_files(&app).len(), 1, "the duplicate's bytes were not kept");
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing() {
    let app =
        TestApp::spawn_with(Options { args: vec!["--max-file-size".into(), "64".into()], ..Default::default() }).await;

    let no_file = Form::new().text("document_id", "x");
    assert_error(upload(&app, no_file).await, StatusCode::UNPROCESSABLE_ENTITY, "missing_field").await;

    let no_id = Form::new().part("file", Part::bytes(PDF).file_name("a.pdf"));
    assert_error(upload(&app, no_id).await, StatusCode::UNPROCESSABLE_ENTITY, "missing_field").await;

    let empty = Form::new().text("document_id", "x").part("file", Part::bytes(&b""[..]).file_name("a.pdf"));
    assert_error(upload(&app, empty).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_size").await;

    let big = Form::new().text("document_id", "x").part("file", Part::bytes(vec![b'a'; 65]).file_name("a.txt"));
    assert_error(upload(&app, big).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let bad_priority =
        Form::new().text("document_id", "x").text("priority", "soon").part("file", Part::bytes(PDF).file_name("a.pdf"));
    assert_error(upload(&app, bad_priority).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_priority").await;

    let bad_tags =
        Form::new().text("document_id", "x").text("tags", "[1]").part("file", Part::bytes(PDF).file_name("a.pdf"));
    assert_error(upload(&app, bad_tags).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_tag").await;

    // The seed's file_size field, when sent, must be the truth.
    let lying = form("x", PDF).text("file_size", (PDF.len() + 1).to_string());
    let body = assert_error(upload(&app, lying).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_size").await;
    assert_eq!(body["error"]["field"], "file_size", "{body}");
    let nonsense = form("x", PDF).text("file_size", "many");
    assert_error(upload(&app, nonsense).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_size").await;

    let json = app
        .http
        .post(app.url("/api/documents"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_error(json, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;

    assert_eq!(app.job_count().await, 0);
    assert!(stored_files(&app).is_empty(), "no blob left behind");
}

#[tokio::test]
async fn an_upload_while_the_blob_store_fails_is_a_503_and_queues_nothing() {
    let app = TestApp::spawn().await;
    // The store's directory turns into a plain file: every write fails.
    std::fs::remove_dir_all(&app.blob_dir).ok();
    std::fs::write(&app.blob_dir, b"not a directory").unwrap();
    let response = upload(&app, form("scan-down", PDF)).await;
    let retry_after = response.headers().get("retry-after").is_some();
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert!(retry_after, "503 carries Retry-After");
    assert_eq!(app.job_count().await, 0);
    assert_eq!(app.outbox_count().await, 0);
    std::fs::remove_file(&app.blob_dir).unwrap();
}
