//! The real binaries as processes: ingest-api, worker and dlq-admin, a job
//! driven into the DLQ by the worker, then retried once the fault is gone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::process::{ServiceProcess as Service, sibling_binary};
use test_support::{TestBroker, TestDb, eventually, unique_suffix};

use crate::helpers::{READ_TOKEN, WRITE_TOKEN};

const API_KEY: &str = "e2e-key";

/// A binary built next to dlq-admin by the same cargo run.
fn sibling(name: &str) -> PathBuf {
    sibling_binary(env!("CARGO_BIN_EXE_dlq-admin"), name)
}

/// A small plain-text invoice the pipeline completes.
fn text_invoice() -> Vec<u8> {
    "ACME Supplies GmbH\nInvoice\nInvoice number: INV-DLQ-1\nInvoice date: 2026-03-01\nDue date: 2026-03-31\n\
     VAT ID: DE123456789\nIBAN: DE89 3704 0044 0532 0130 00\nNet amount: 1,000.00 EUR\nVAT 19%: 190.00 EUR\nTotal: 1,190.00 EUR\n"
        .as_bytes()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_worker_dead_lettered_is_listed_inspected_retried_and_completes() {
    let (ingest_bin, worker_bin, admin_bin) = (sibling("ingest-api"), sibling("worker"), sibling("dlq-admin"));
    let db = TestDb::new().await;
    let mut broker = TestBroker::new();
    broker.retry_policy =
        Some(job_model::RetryPolicy { base: Duration::from_millis(50), cap: Duration::from_millis(100) });
    let suffix = unique_suffix();
    let blob_dir = std::env::temp_dir().join(format!("docflow-dlq-e2e-blobs-{suffix}"));
    let log_dir = std::env::temp_dir().join(format!("docflow-dlq-e2e-logs-{suffix}"));
    std::fs::create_dir_all(&blob_dir).unwrap();
    std::fs::create_dir_all(&log_dir).unwrap();
    let env: HashMap<&str, String> = [
        ("DATABASE_URL", db.url.clone()),
        ("AMQP_URL", broker.amqp_url.clone()),
        ("DOCFLOW_NAMESPACE", broker.namespace.clone()),
        ("BLOB_STORE_URL", format!("file://{}", blob_dir.display())),
        ("INGEST_API_KEYS", API_KEY.to_owned()),
        ("ADMIN_TOKENS", format!("{WRITE_TOKEN}:write,{READ_TOKEN}:read")),
        ("RABBITMQ_MAX_RETRIES", "1".to_owned()),
        ("RETRY_BASE_DELAY_MS", "50".to_owned()),
        ("RETRY_MAX_DELAY_MS", "100".to_owned()),
        ("OUTBOX_POLL_INTERVAL_MS", "100".to_owned()),
        ("WORKER_COUNT", "2".to_owned()),
        ("HTTP_WORKERS", "1".to_owned()),
    ]
    .into_iter()
    .collect();
    // Every process exports its spans here, to check the replay continues the job's trace.
    let receiver = test_support::OtlpReceiver::start().await;
    let mut env = env;
    env.insert("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
    env.insert("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    // Migrations first, once, so the three processes do not race to apply them.
    let ingest = Service::spawn("ingest-api", &ingest_bin, &env, &log_dir);
    ingest.ready(&http).await;
    let admin = Service::spawn("dlq-admin", &admin_bin, &env, &log_dir);
    let worker = Service::spawn("worker", &worker_bin, &env, &log_dir);
    admin.ready(&http).await;
    worker.ready(&http).await;

    // The blob is a symlink to itself: reading it fails with ELOOP, a
    // retryable blob-store error, so the job exhausts its one retry.
    let invoice = text_invoice();
    let blob = blob_dir.join("in/dlq-e2e/invoice.txt");
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&blob, &blob).unwrap();
    let submitted = http
        .post(ingest.url("/api/process-async"))
        .bearer_auth(API_KEY)
        .json(&json!({"document_id": "dlq-e2e", "filename": "invoice.txt", "blob_path": "in/dlq-e2e/invoice.txt",
                      "file_size": invoice.len(), "priority": "HIGH"}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::ACCEPTED);
    let job_id = submitted.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned();

    let admin_get = |path: String| {
        let http = http.clone();
        let url = admin.url(&path);
        async move {
            let response = http.get(url).bearer_auth(READ_TOKEN).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "GET {path}");
            response.json::<Value>().await.unwrap()
        }
    };

    // Listed by dlq-admin once the worker has dead-lettered it.
    let item = eventually(
        Duration::from_secs(60),
        &format!("job {job_id} in the DLQ (logs in {})", log_dir.display()),
        || async {
            let list = admin_get("/api/dlq".into()).await;
            list["items"].as_array().unwrap().iter().find(|i| i["id"] == job_id.as_str()).cloned()
        },
    )
    .await;
    assert_eq!(item["kind"], "job");
    assert_eq!(item["error_stage"], "upload");
    assert_eq!(item["priority"], "HIGH");
    assert_eq!(item["retry_count"], 1);
    assert_eq!(item["dlq_reason"], "retries_exhausted");
    assert!(item["error_message"].as_str().is_some_and(|m| !m.is_empty()), "{item}");

    // Inspected: the whole history and both attempts' stage timings; the
    // worker's dead letter was consumed from jobs.dlq and noted.
    let detail = eventually(Duration::from_secs(30), "the dead letter to be imported", || async {
        let d = admin_get(format!("/api/dlq/{job_id}")).await;
        d["dlq_message"]["seen_at"].is_string().then_some(d)
    })
    .await;
    let statuses: Vec<&str> =
        detail["events"].as_array().unwrap().iter().map(|e| e["to_status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["QUEUED", "PROCESSING", "RETRYING", "PROCESSING", "DLQ"]);
    let attempts: Vec<i64> =
        detail["stages"].as_array().unwrap().iter().map(|s| s["attempt"].as_i64().unwrap()).collect();
    assert!(attempts.contains(&1) && attempts.contains(&2), "{attempts:?}");
    assert_eq!(
        broker.ready_count(&broker.topology.dlq_queue()).await,
        0,
        "Postgres holds the DLQ, the queue is drained"
    );

    // The fault is gone: the blob is a real file now. Retry → COMPLETED.
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &invoice).unwrap();
    let retried = http
        .post(admin.url(&format!("/api/dlq/{job_id}/retry")))
        .bearer_auth(WRITE_TOKEN)
        .json(&json!({"reason": "blob store repaired"}))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(retried.json::<Value>().await.unwrap()["next_attempt"], 3);

    let done = eventually(
        Duration::from_secs(60),
        &format!("job {job_id} to complete (logs in {})", log_dir.display()),
        || async {
            let s: Value = http
                .get(ingest.url(&format!("/api/job/{job_id}/status")))
                .bearer_auth(API_KEY)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            matches!(s["job_status"].as_str(), Some("COMPLETED" | "FAILED" | "DLQ")).then_some(s)
        },
    )
    .await;
    assert_eq!(done["job_status"], "COMPLETED", "{done}");
    assert_eq!(done["attempt"], 3, "attempt numbering continues after a retry");
    assert_eq!(done["retry_count"], 0, "a retry starts a fresh budget");

    let detail = admin_get(format!("/api/dlq/{job_id}")).await;
    assert_eq!(detail["in_dlq"], false);
    let statuses: Vec<&str> =
        detail["events"].as_array().unwrap().iter().map(|e| e["to_status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["QUEUED", "PROCESSING", "RETRYING", "PROCESSING", "DLQ", "QUEUED", "PROCESSING", "COMPLETED"]
    );
    let audit = admin_get("/api/audit".into()).await;
    assert_eq!(audit["entries"][0]["action"], "retry");
    assert_eq!(audit["entries"][0]["target"], job_id.as_str());
    assert!(admin_get("/api/dlq".into()).await["items"].as_array().unwrap().is_empty());

    // The replay continues the job's original trace: the admin's action is a
    // span in it, and the third attempt descends from that action.
    let trace_id = done["trace_id"].as_str().expect("a trace id on the job").to_owned();
    let spans = eventually(Duration::from_secs(60), "the replayed attempt's spans", || async {
        let spans: Vec<test_support::ReceivedSpan> =
            receiver.spans().into_iter().filter(|s| s.trace_id == trace_id).collect();
        let third =
            spans.iter().any(|s| s.kind == 5 && s.attributes.get("docflow.attempt").map(String::as_str) == Some("3"));
        third.then_some(spans)
    })
    .await;
    let replay =
        spans.iter().find(|s| s.name == "dlq replay").expect("the admin's replay is a span of the job's trace");
    assert_eq!(replay.service, "dlq-admin");
    let by_id: HashMap<&str, &test_support::ReceivedSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let third = spans
        .iter()
        .find(|s| s.kind == 5 && s.attributes.get("docflow.attempt").map(String::as_str) == Some("3"))
        .unwrap();
    let mut ancestor = by_id.get(third.parent_span_id.as_str()).copied();
    let mut chain = Vec::new();
    while let Some(span) = ancestor {
        chain.push(span.name.clone());
        ancestor = by_id.get(span.parent_span_id.as_str()).copied();
    }
    assert!(chain.contains(&"dlq replay".to_owned()), "attempt 3 descends from the replay: {chain:?}");

    drop((worker, admin, ingest));
    let _ = std::fs::remove_dir_all(&blob_dir);
    let _ = std::fs::remove_dir_all(&log_dir);
}
