//! The real binaries on cloud blob stores, over the real protocols: S3
//! against moto's server and Azure Blob against Azurite, each started by the
//! test on its own port (test_support::blob_servers). Upload through
//! ingest-api, the worker reading the document, the storage stage's result
//! in the bucket, and a store outage that the job rides out by retrying;
//! S3 over https with a private CA; settings that must stop a service.
//!
//! GCS has no local server here (fake-gcs-server is a Go program): its test
//! shows that `gs://` URLs are accepted and configured and that an
//! unreachable endpoint fails the job as retryable, not permanently.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use test_support::blob_servers::{AzuriteServer, BlobServer, S3Server};
use test_support::{TestDb, eventually};

use crate::platform::{API_KEY, Platform, Setup, free_port, text_invoice, worker_bin};

/// The prefix in BLOB_STORE_URL: everything the services store is under it.
const PREFIX: &str = "docflow";

/// A short retry budget per blob request, so that an outage shows as a
/// failed attempt within seconds; enough job retries (30, 0.5 to 1 s apart:
/// about a minute) to outlast a server restart on a loaded machine.
fn setup_for(server_env: Vec<(&'static str, String)>, url: String) -> Setup {
    let mut extra_env = server_env;
    extra_env.push(("BLOB_STORE_URL", url));
    extra_env.push(("BLOB_STORE_RETRY_TIMEOUT_SECONDS", "1".into()));
    extra_env.push(("BLOB_STORE_MAX_RETRIES", "2".into()));
    Setup { workers: 0, max_retries: 30, retry_base_ms: 500, retry_max_ms: 1000, extra_env, ..Setup::default() }
}

async fn upload(platform: &Platform, document_id: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = Form::new()
        .text("document_id", document_id.to_owned())
        .part("file", Part::bytes(bytes).file_name(format!("{document_id}.txt")).mime_str("text/plain").unwrap());
    platform.http.post(platform.api("/api/documents")).bearer_auth(API_KEY).multipart(form).send().await.unwrap()
}

async fn accepted_job(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    body["job_id"].as_str().unwrap().to_owned()
}

async fn assert_unavailable(response: reqwest::Response) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
}

async fn read_json(store: &dyn ObjectStore, path: &str) -> Value {
    let bytes = store.get(&Path::from(path)).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The first failed attempt of the job, as `(to_status, error_kind)` of its
/// event: RETRYING for a retryable error, FAILED or DLQ otherwise.
async fn first_failed_attempt(platform: &Platform, job: &str) -> (String, String) {
    let what = format!("an attempt of job {job} to fail (logs in {})", platform.log_dir.display());
    eventually(Duration::from_secs(60), &what, || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT to_status, coalesce(detail->>'error_kind', '') FROM job_events
             WHERE job_id = $1::uuid AND to_status IN ('RETRYING', 'FAILED', 'DLQ') ORDER BY id LIMIT 1",
        )
        .bind(job)
        .fetch_optional(&platform.db.pool)
        .await
        .unwrap()
    })
    .await
}

async fn result_over_http(platform: &Platform, job: &str) -> Value {
    let response =
        platform.http.get(platform.api(&format!("/api/job/{job}/result"))).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["result"].clone()
}

/// The whole scenario, the same on every store.
async fn store_round_trip_and_outage(mut server: BlobServer) {
    let mut platform = Platform::start(setup_for(server.service_env(), server.url(PREFIX))).await;
    let store = server.store();

    // Upload: the bytes land in the bucket under the URL's prefix.
    let document = text_invoice("BLOB-1");
    let job = accepted_job(upload(&platform, "blob-1", document.clone()).await).await;
    let uploads: Vec<_> = store.list(Some(&Path::from(format!("{PREFIX}/uploads")))).try_collect().await.unwrap();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let stored = store.get(&uploads[0].location).await.unwrap().bytes().await.unwrap();
    assert_eq!(stored.as_ref(), document.as_slice());

    // The worker reads it, and the storage stage writes the result next to it.
    platform.start_worker(&[]).await;
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "COMPLETED", "{status}");
    let in_store = read_json(store.as_ref(), &format!("{PREFIX}/results/{job}.json")).await;
    assert_eq!(in_store["job_id"], job.as_str());
    assert_eq!(in_store, result_over_http(&platform, &job).await, "the bucket holds the result the API serves");

    // A document larger than one upload part (UPLOAD_PART_SIZE_BYTES, 5 MiB)
    // is a multipart upload on S3 and a block list on Azure. The worker reads
    // it back whole (the upload stage checks size and hashes it) before
    // validation refuses its type, permanently.
    let big: Vec<u8> = (0..11 * 1024 * 1024 + 17).map(|i: u32| (i % 251) as u8).collect();
    let job = accepted_job(upload(&platform, "blob-big", big.clone()).await).await;
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!((&status["job_status"], &status["error_stage"]), (&"FAILED".into(), &"validation".into()), "{status}");
    let path = format!("{PREFIX}/{}", status["blob_path"].as_str().unwrap());
    let stored = store.get(&Path::from(path)).await.unwrap().bytes().await.unwrap();
    assert!(stored.as_ref() == big.as_slice(), "the parts were put together in order");

    // Outage: a document stored while the store is up, its job run while
    // the store is down.
    platform.workers[0].terminate(Duration::from_secs(30)).await;
    let document = text_invoice("BLOB-2");
    let job = accepted_job(upload(&platform, "blob-2", document).await).await;
    server.go_down();
    assert_unavailable(upload(&platform, "blob-3", text_invoice("BLOB-3")).await).await;
    // A worker starts while the store is away (it only logs that) ...
    platform.start_worker(&[]).await;
    // ... and its attempt fails as retryable, with the store named.
    let failed = first_failed_attempt(&platform, &job).await;
    assert_eq!(failed, ("RETRYING".to_owned(), "blob_store_unavailable".to_owned()));
    let status = platform.status(&job).await;
    assert_eq!(status["error_stage"], "upload", "{status}");
    let message = status["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("blob_store_unavailable (retryable): fetch document:"), "{status}");

    server.come_back().await;
    let status = platform.wait_final(&job, Duration::from_secs(120)).await;
    assert_eq!(status["job_status"], "COMPLETED", "{status}\nserver log:\n{}", server.log_text());
    let in_store = read_json(store.as_ref(), &format!("{PREFIX}/results/{job}.json")).await;
    assert_eq!(in_store["job_id"], job.as_str());
}

#[tokio::test]
async fn s3_upload_process_result_and_outage() {
    store_round_trip_and_outage(BlobServer::S3(S3Server::start("docflow-test").await)).await;
}

#[tokio::test]
async fn azure_blob_upload_process_result_and_outage() {
    store_round_trip_and_outage(BlobServer::Azure(AzuriteServer::start("docflow-test").await)).await;
}

#[tokio::test]
async fn s3_over_https_with_a_private_ca() {
    let server = S3Server::start_tls("docflow-tls").await;
    let ca = server.ca_file().unwrap().display().to_string();
    let url = server.url(PREFIX);

    // Without the CA the server's certificate is refused, and that is a
    // setting to fix, not an outage: the worker stops at start.
    let db = TestDb::new().await;
    let mut env = server.service_env();
    env.push(("BLOB_STORE_URL", url.clone()));
    let output = worker_refuses(&db, &env).await;
    assert!(output.contains("TLS certificate is not trusted"), "{output}");

    // With it (SSL_CERT_FILE, read by rustls' platform verifier), the whole
    // round trip runs over TLS.
    let mut env = server.service_env();
    env.push(("SSL_CERT_FILE", ca));
    let mut platform = Platform::start(setup_for(env, url)).await;
    platform.start_worker(&[]).await;
    let job = accepted_job(upload(&platform, "tls-1", text_invoice("TLS-1")).await).await;
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "COMPLETED", "{status}");
    let in_store = read_json(server.store().as_ref(), &format!("{PREFIX}/results/{job}.json")).await;
    assert_eq!(in_store["job_id"], job.as_str());
}

/// A service account key that turns OAuth off (object_store's setting for
/// emulators): no token is fetched, requests go straight to GOOGLE_BASE_URL.
const GCS_TEST_KEY: &str =
    r#"{"private_key":"unused","private_key_id":"unused","client_email":"docflow@test.invalid","disable_oauth":true}"#;

#[tokio::test]
async fn gcs_urls_are_configured_and_an_unreachable_store_fails_jobs_as_retryable() {
    // Nothing listens on this port: every request is refused.
    let closed = free_port();
    let gcs_env = vec![
        ("GOOGLE_BASE_URL", format!("http://127.0.0.1:{closed}")),
        ("GOOGLE_ALLOW_HTTP", "true".into()),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", GCS_TEST_KEY.into()),
    ];
    let mut setup = setup_for(gcs_env, format!("gs://docflow-test/{PREFIX}"));
    setup.max_retries = 1;
    let mut platform = Platform::start(setup).await;
    // Both services took the URL; the store's absence is only logged.
    assert!(platform.ingest.log_text().contains("blob store unreachable at start"), "{}", platform.ingest.log_text());

    assert_unavailable(upload(&platform, "gcs-1", text_invoice("GCS-1")).await).await;

    platform.start_worker(&[]).await;
    let job = platform.submit("gcs-2", "incoming/gcs-2.txt", 100, "NORMAL").await;
    let failed = first_failed_attempt(&platform, &job).await;
    assert_eq!(failed, ("RETRYING".to_owned(), "blob_store_unavailable".to_owned()));
    // Retryable to the end: the retries run out into the DLQ, never FAILED.
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "DLQ", "{status}");
}

/// Runs the worker binary with `env` and returns its exit code and output,
/// for settings that must stop it at start.
async fn worker_refuses(db: &TestDb, env: &[(&str, String)]) -> String {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", db.url.clone()),
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("DOCFLOW_NAMESPACE", format!("blobcfg-{}", test_support::unique_suffix())),
    ]);
    vars.extend(env.iter().map(|(k, v)| (*k, v.clone())));
    let mut child = Command::new(worker_bin())
        .env_clear()
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("the worker kept running with {env:?}: {}", String::from_utf8_lossy(&output.stdout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().unwrap();
    assert!(!exit.success(), "the worker started with {env:?}");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn blob_store_misconfiguration_stops_the_worker_at_start_with_a_clear_message() {
    let db = TestDb::new().await;

    let output = worker_refuses(&db, &[("BLOB_STORE_URL", "s3://".into())]).await;
    assert!(output.contains("names no bucket or container"), "{output}");

    let output = worker_refuses(&db, &[("BLOB_STORE_URL", "ftp://files/docs".into())]).await;
    assert!(output.contains("unsupported store"), "{output}");

    let plain_http = [("BLOB_STORE_URL", "s3://docs".into()), ("AWS_ENDPOINT", "http://127.0.0.1:9".into())];
    let output = worker_refuses(&db, &plain_http).await;
    assert!(output.contains("set AWS_ALLOW_HTTP=true"), "{output}");

    // Azure without an account name.
    let output = worker_refuses(&db, &[("BLOB_STORE_URL", "az://docs".into())]).await;
    assert!(output.contains("BLOB_STORE_URL") && output.contains("ccount"), "{output}");

    // A store that answers, but has no such container.
    let azurite = AzuriteServer::start("docflow-present").await;
    let mut env = azurite.service_env();
    env.push(("BLOB_STORE_URL", azurite.url("docs").replace("docflow-present", "docflow-absent")));
    let output = worker_refuses(&db, &env).await;
    assert!(output.contains("does the bucket or container exist"), "{output}");
}
