use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use job_model::{JobEnvelope, JobMessage, JobPriority};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use test_support::eventually;

use crate::helpers::{API_KEY, Options, TestApp, assert_error, valid_body};
use crate::raw_multipart::{
    BOUNDARY, closing, content_type, document_bytes, endless, file_head, raw_request, streamed, text_part,
};

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

fn with_args(args: &[&str]) -> Options {
    Options { args: args.iter().map(|a| a.to_string()).collect(), ..Default::default() }
}

/// Every file under the blob directory, staged (partial) uploads included.
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

fn stored_bytes(app: &TestApp) -> u64 {
    stored_files(app).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

async fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(app.job_count().await, 0, "no job row");
    assert_eq!(app.outbox_count().await, 0, "no outbox row");
    assert_eq!(stored_files(app), Vec::<std::path::PathBuf>::new(), "no blob, whole or partial, left behind");
}

/// Waits until the client has stopped sending an endless body: the server
/// closed the connection instead of reading on.
async fn server_stopped_reading(sent: &crate::raw_multipart::Sent) {
    eventually(Duration::from_secs(20), "the server to close the connection of an unread body", || async {
        sent.dropped.load(Ordering::SeqCst).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_chunked_file_over_the_limit_is_a_413_and_the_rest_is_not_read() {
    // 7 KiB files: the whole body may be 263 KiB with the form around it.
    let app = TestApp::spawn_with(with_args(&["--max-file-size", "7168"])).await;
    let mut head = text_part("document_id", "big-chunked");
    head.extend(file_head("big.pdf"));
    let (body, sent) = endless(head, vec![b'a'; 64 * 1024]);

    let response = streamed(&app, body).send().await.expect("an answer while the body is still being sent");
    let body = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(body["error"]["field"], "file", "{body}");
    server_stopped_reading(&sent).await;
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_chunked_text_field_over_its_limit_is_refused_and_the_rest_is_not_read() {
    let app = TestApp::spawn().await;
    let head = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document_id\"\r\n\r\n").into_bytes();
    let (body, sent) = endless(head, vec![b'd'; 16 * 1024]);

    let response = streamed(&app, body).send().await.expect("an answer while the body is still being sent");
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "field_too_long").await;
    server_stopped_reading(&sent).await;
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let app = TestApp::spawn_with(with_args(&["--max-file-size", "7168"])).await;
    let head = format!(
        "POST /api/documents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
        content_type(),
        100 * 1024 * 1024
    );
    let mut prefix = text_part("document_id", "big-declared");
    prefix.extend(file_head("big.pdf"));
    // Only the first bytes of the 100 MiB are ever sent.
    let response = raw_request(&app, &head, &prefix).await;
    assert_eq!(response.status, 413, "{}", response.head);
    assert_eq!(response.body["error"]["code"], "payload_too_large", "{}", response.body);
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn an_upload_larger_than_the_memory_budget_streams_to_the_store_as_it_arrives() {
    // One upload at a time, 64 KiB parts: the budget is 128 KiB, the file 8 MiB.
    let app = TestApp::spawn_with(with_args(&["--upload-part-size", "65536", "--max-concurrent-uploads", "1"])).await;
    let document = document_bytes(8 * 1024 * 1024);
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let request = tokio::spawn(streamed(&app, rx).send());

    let mut head = text_part("document_id", "streamed-1");
    head.extend(text_part("file_size", &document.len().to_string()));
    head.extend(file_head("large scan.pdf"));
    tx.send(Ok(head.into())).await.unwrap();
    let (first_half, second_half) = document.split_at(document.len() / 2);
    for chunk in first_half.chunks(32 * 1024) {
        tx.send(Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
    }
    // Half the file is in the store before the rest is sent: the upload is
    // written as it arrives, not gathered in memory first.
    eventually(Duration::from_secs(20), "the first half to reach the blob store", || async {
        (stored_bytes(&app) + 2 * 65536 >= first_half.len() as u64).then_some(())
    })
    .await;
    for chunk in second_half.chunks(32 * 1024) {
        tx.send(Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
    }
    tx.send(Ok(closing().into())).await.unwrap();
    drop(tx);

    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted: Value = response.json().await.unwrap();
    let files = stored_files(&app);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(std::fs::read(&files[0]).unwrap() == document, "the stored blob is byte for byte the upload");
    let status: Value =
        app.get(&format!("/api/job/{}/status", accepted["job_id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(status["file_size"], document.len());
    assert_eq!(status["filename"], "large scan.pdf");
}

#[tokio::test]
async fn uploads_over_the_concurrency_bound_are_turned_away_with_retry_after() {
    let app =
        TestApp::spawn_with(with_args(&["--max-concurrent-uploads", "1", "--upload-queue-timeout-ms", "0"])).await;
    // The first upload takes the one slot and keeps it while its body trickles in.
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let first = tokio::spawn(streamed(&app, rx).send());
    let mut head = text_part("document_id", "slow-1");
    head.extend(file_head("slow.pdf"));
    head.extend_from_slice(PDF);
    tx.send(Ok(head.into())).await.unwrap();
    eventually(Duration::from_secs(20), "the first upload to hold its slot", || async {
        (app.metric("docflow_uploads_in_flight").await? == 1.0).then_some(())
    })
    .await;

    let busy = upload(&app, form("quick-1", PDF)).await;
    let retry_after = busy.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_error(busy, StatusCode::SERVICE_UNAVAILABLE, "server_busy").await;
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "503 carries Retry-After");
    assert_eq!(app.metric("docflow_uploads_refused_busy_total").await, Some(1.0));
    // JSON submits take no upload slot.
    assert_eq!(app.submit(&valid_body("json-1")).await.status(), StatusCode::ACCEPTED);

    tx.send(Ok(closing().into())).await.unwrap();
    drop(tx);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::ACCEPTED);
    // The slot is free again.
    assert_eq!(upload(&app, form("quick-2", PDF)).await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.job_count().await, 3);
}

#[tokio::test]
async fn an_upload_waits_briefly_for_a_slot_before_it_is_turned_away() {
    let app =
        TestApp::spawn_with(with_args(&["--max-concurrent-uploads", "1", "--upload-queue-timeout-ms", "60000"])).await;
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let first = tokio::spawn(streamed(&app, rx).send());
    let mut head = text_part("document_id", "slow-2");
    head.extend(file_head("slow.pdf"));
    head.extend_from_slice(PDF);
    tx.send(Ok(head.into())).await.unwrap();
    eventually(Duration::from_secs(20), "the first upload to hold its slot", || async {
        (app.metric("docflow_uploads_in_flight").await? == 1.0).then_some(())
    })
    .await;

    let second = tokio::spawn({
        let request = app.http.post(app.url("/api/documents")).bearer_auth(API_KEY).multipart(form("queued-1", PDF));
        request.send()
    });
    eventually(Duration::from_secs(20), "the second upload to wait for the slot", || async {
        (app.metric("docflow_uploads_waiting").await? == 1.0).then_some(())
    })
    .await;
    tx.send(Ok(closing().into())).await.unwrap();
    drop(tx);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::ACCEPTED, "the waiting upload got the slot");
    assert_eq!(app.job_count().await, 2);
}

#[tokio::test]
async fn a_client_that_stops_sending_gets_a_408_and_gives_its_slot_back() {
    let app = TestApp::spawn_with(with_args(&[
        "--max-concurrent-uploads",
        "1",
        "--upload-idle-timeout-ms",
        "300",
        "--upload-part-size",
        "65536",
    ]))
    .await;
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stalled = tokio::spawn(streamed(&app, rx).send());
    let mut head = text_part("document_id", "stalled-1");
    head.extend(file_head("stalled.pdf"));
    head.extend(document_bytes(200 * 1024));
    tx.send(Ok(head.into())).await.unwrap();
    // ...and nothing more, with the connection kept open.
    let response = stalled.await.unwrap().expect("an answer to a silent client");
    assert_error(response, StatusCode::REQUEST_TIMEOUT, "request_timeout").await;
    drop(tx);
    assert_nothing_stored(&app).await;
    assert_eq!(upload(&app, form("after-stall", PDF)).await.status(), StatusCode::ACCEPTED, "the slot is free");
}

#[tokio::test]
async fn hostile_multipart_bodies_get_clear_4xx_and_leave_nothing() {
    // Small parts, so that a cut-off file has reached the store and must be aborted.
    let app = TestApp::spawn_with(with_args(&["--upload-part-size", "65536"])).await;
    let send = |body: Vec<u8>| {
        app.http
            .post(app.url("/api/documents"))
            .bearer_auth(API_KEY)
            .header("content-type", content_type())
            .body(body)
            .send()
    };

    // Many parts: a field sent again is refused at once, not overwritten 100,000 times.
    let mut many = Vec::new();
    for _ in 0..100_000 {
        many.extend(text_part("document_id", "again"));
    }
    let response = send(many).await.unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_multipart").await;
    assert_eq!(body["error"]["field"], "document_id", "{body}");

    // A part the form does not have is refused before its bytes are read.
    let mut unknown = text_part("document_id", "u");
    unknown.extend(text_part("attachment", "x"));
    unknown.extend(closing());
    let body = assert_error(send(unknown).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_field").await;
    assert_eq!(body["error"]["field"], "attachment", "{body}");

    // A part header of 1 MiB.
    let huge_header = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document_id\"\r\nX-Padding: {}\r\n\r\nh\r\n--{BOUNDARY}--\r\n",
        "p".repeat(1024 * 1024)
    );
    assert_error(send(huge_header.into_bytes()).await.unwrap(), StatusCode::BAD_REQUEST, "invalid_multipart").await;

    // Thousands of small part headers.
    let many_headers = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document_id\"\r\n{}\r\nh\r\n--{BOUNDARY}--\r\n",
        "X-A: b\r\n".repeat(5000)
    );
    assert_error(send(many_headers.into_bytes()).await.unwrap(), StatusCode::BAD_REQUEST, "invalid_multipart").await;

    // A file part that never ends: the body stops without a closing boundary.
    let mut unended = text_part("document_id", "cut");
    unended.extend(file_head("cut.pdf"));
    unended.extend(document_bytes(300 * 1024));
    assert_error(send(unended).await.unwrap(), StatusCode::BAD_REQUEST, "invalid_multipart").await;

    // No boundary at all.
    let response = app
        .http
        .post(app.url("/api/documents"))
        .bearer_auth(API_KEY)
        .header("content-type", "multipart/form-data")
        .body(text_part("document_id", "x"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_multipart").await;

    assert_nothing_stored(&app).await;
}
