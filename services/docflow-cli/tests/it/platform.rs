//! The CLI against the real binaries (ingest-api, worker, metrics-tracker
//! as processes, built by the same workspace test run) on a fresh database
//! and namespace: `submit --wait` to COMPLETED and to FAILED with their exit
//! statuses, `jobs` with filters, `metrics report`; and every HTTP service's
//! `/api/docs` page, its vendored script, and the page rendered by a real
//! headless Chromium.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use test_support::process::{ServiceProcess, sibling_binary};
use test_support::{TestBroker, TestDb, eventually, unique_suffix};

use super::{docflow, stderr, stdout};

const KEY: &str = "cli-platform-key";
const ADMIN: &str = "cli-platform-admin";

fn bin(name: &str) -> PathBuf {
    sibling_binary(env!("CARGO_BIN_EXE_docflow"), name)
}

struct Platform {
    _db: TestDb,
    _broker: TestBroker,
    dir: PathBuf,
    ingest: ServiceProcess,
    worker: ServiceProcess,
    tracker: ServiceProcess,
    admin: ServiceProcess,
}

impl Platform {
    async fn start() -> Platform {
        let db = TestDb::new().await;
        let broker = TestBroker::new();
        let dir = std::env::temp_dir().join(format!("docflow-cli-platform-{}", unique_suffix()));
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        let env: HashMap<&str, String> = [
            ("DATABASE_URL", db.url.clone()),
            ("AMQP_URL", broker.amqp_url.clone()),
            ("DOCFLOW_NAMESPACE", broker.namespace.clone()),
            ("BLOB_STORE_URL", format!("file://{}", dir.join("blobs").display())),
            ("INGEST_API_KEYS", KEY.to_owned()),
            ("ADMIN_TOKENS", format!("cli:{ADMIN}:write")),
            ("OUTBOX_POLL_INTERVAL_MS", "100".to_owned()),
            ("RETRY_BASE_DELAY_MS", "100".to_owned()),
            ("RETRY_MAX_DELAY_MS", "400".to_owned()),
        ]
        .into_iter()
        .collect();
        let http = reqwest::Client::new();
        // ingest-api first: it applies the migrations the others need.
        let ingest = ServiceProcess::spawn("ingest-api", &bin("ingest-api"), &env, &dir);
        ingest.ready(&http).await;
        let worker = ServiceProcess::spawn("worker", &bin("worker"), &env, &dir);
        let tracker = ServiceProcess::spawn("metrics-tracker", &bin("metrics-tracker"), &env, &dir);
        let admin = ServiceProcess::spawn("dlq-admin", &bin("dlq-admin"), &env, &dir);
        for s in [&worker, &tracker, &admin] {
            s.ready(&http).await;
        }
        Platform { _db: db, _broker: broker, dir, ingest, worker, tracker, admin }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DOCFLOW_API_URL", self.ingest.url("")),
            ("DOCFLOW_METRICS_URL", self.tracker.url("")),
            ("DOCFLOW_API_KEY", KEY.to_owned()),
            ("DOCFLOW_ADMIN_TOKEN", ADMIN.to_owned()),
        ]
    }

    async fn docflow(&self, args: &[&str]) -> std::process::Output {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        docflow(args, &env).await
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.join("blobs"));
    }
}

fn text_invoice(number: &str) -> Vec<u8> {
    format!(
        "ACME Supplies GmbH\nInvoice number: {number}\nInvoice date: 2026-03-01\nVAT ID: DE123456789\n\
         Net amount: 1,000.00 EUR\nVAT 19%: 190.00 EUR\nTotal: 1,190.00 EUR\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn submit_wait_jobs_and_metrics_report_against_the_running_platform() {
    let p = Platform::start().await;

    // A document the pipeline completes: exit 0, progress on stderr, the
    // final status on stdout.
    let good = p.file("inv-900.txt", &text_invoice("INV-900"));
    let out = p.docflow(&["submit", &good, "--document-id", "inv-900", "--wait", "--poll-interval-ms", "200"]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}\nstdout: {}", stderr(&out), stdout(&out));
    assert!(stderr(&out).contains("submitted inv-900 as job "), "{}", stderr(&out));
    assert!(
        stderr(&out).lines().last().unwrap().starts_with("COMPLETED attempt 1: 8/8 stages done"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("COMPLETED") && stdout(&out).contains("storage"), "{}", stdout(&out));

    // A broken PDF fails permanently: exit 6, and --json keeps stdout one document.
    let broken = p.file("broken.pdf", b"%PDF-1.7\n1 0 obj <</Type /Catalog");
    let out = p.docflow(&["submit", &broken, "--document-id", "broken-1", "--wait", "--json"]).await;
    assert_eq!(out.status.code(), Some(6), "stderr: {}\nstdout: {}", stderr(&out), stdout(&out));
    let failed: Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(failed["job_status"], "FAILED");
    assert!(stderr(&out).contains("ended FAILED"), "{}", stderr(&out));

    // jobs: the API's filters.
    let out = p.docflow(&["jobs", "--status", "COMPLETED", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let jobs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let docs: Vec<&str> = jobs["jobs"].as_array().unwrap().iter().map(|j| j["document_id"].as_str().unwrap()).collect();
    assert_eq!(docs, ["inv-900"]);
    let out = p.docflow(&["jobs", "--all", "--limit", "1"]).await;
    let text = stdout(&out);
    assert!(text.starts_with("JOB ID"), "{text}");
    assert!(text.contains("inv-900") && text.contains("broken-1") && text.contains("FAILED"), "{text}");
    let out = p.docflow(&["jobs", "--priority", "urgent"]).await;
    assert_eq!(out.status.code(), Some(1), "an invalid filter is the API's 400: {}", stderr(&out));
    assert!(stderr(&out).contains("priority"), "{}", stderr(&out));

    // metrics report: the tracker has counted both executions (its
    // consumer runs behind the worker, so wait for it).
    eventually(Duration::from_secs(60), "metrics-tracker to count both executions", || async {
        let out = p.docflow(&["metrics", "report", "--hours", "1", "--json"]).await;
        let report: Value = serde_json::from_str(&stdout(&out)).ok()?;
        (report["total_executions"] == 2).then_some(())
    })
    .await;
    let out = p.docflow(&["metrics", "report", "--hours", "1"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("executions:") && text.contains("successful:"), "{text}");
    assert!(text.contains("STAGE") && text.contains("extraction"), "{text}");
    let out = p.docflow(&["metrics", "report", "--admin-token", "wrong"]).await;
    assert_eq!(out.status.code(), Some(4), "a wrong token is the auth status: {}", stderr(&out));
}

/// Every HTTP service serves the docs page and the vendored viewer; a real
/// headless Chromium renders ingest-api's operations from it.
#[tokio::test]
async fn every_service_serves_its_api_docs_with_the_vendored_viewer() {
    let p = Platform::start().await;
    let http = reqwest::Client::new();
    for service in [&p.ingest, &p.worker, &p.tracker, &p.admin] {
        let page = http.get(service.url("/api/docs")).send().await.unwrap();
        assert_eq!(page.status(), 200, "{}", service.name);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8", "{}", service.name);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"<script src="docs/redoc-2.5.4.standalone.js">"#), "{html}");
        assert!(html.contains(r#"spec-url="openapi.json""#), "{html}");
        assert!(!html.contains("https://") && !html.contains("http://"), "nothing from elsewhere: {html}");

        let script = http.get(service.url("/api/docs/redoc-2.5.4.standalone.js")).send().await.unwrap();
        assert_eq!(script.status(), 200, "{}", service.name);
        assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
        assert!(script.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let body = script.bytes().await.unwrap();
        assert!(body.len() > 500_000 && body.starts_with(b"/*! For license information"), "{}", body.len());

        let spec: Value = http.get(service.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(spec["paths"].as_object().is_some_and(|p| !p.is_empty()), "{}", service.name);
    }

    // Chromium runs the page's script and prints the DOM it built. Redoc
    // gives each operation an element whose id ends in its operationId.
    let profile = p.dir.join("chromium-profile");
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(p.ingest.url("/api/docs"))
        .output()
        .expect("chromium runs (scripts/ensure-browser.sh installs it; make test runs that)");
    let dom = String::from_utf8_lossy(&out.stdout);
    for operation in ["job_status", "list_jobs", "upload_document"] {
        assert!(
            dom.contains(&format!("operation/{operation}\"")),
            "Redoc rendered no {operation} operation; chromium stderr: {}\nDOM: {}",
            String::from_utf8_lossy(&out.stderr),
            &dom[..dom.len().min(3000)]
        );
    }
    assert!(dom.contains("docflow ingest-api"), "the document's title is shown");
    let _ = std::fs::remove_dir_all(&profile);
}
