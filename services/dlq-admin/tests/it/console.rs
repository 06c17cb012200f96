//! The web console in a real headless Chromium, against the real binaries
//! (ingest-api, worker, metrics-tracker, dlq-admin) on the real Postgres
//! and RabbitMQ. The run also writes the README's screenshots.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::process::{ServiceProcess as Service, sibling_binary};
use test_support::{TestBroker, TestDb, eventually, unique_suffix};

use crate::browser::{Browser, DESKTOP};
use crate::helpers::{DlqJobs, READ_TOKEN, WRITE_TOKEN};

const API_KEY: &str = "console-e2e-key";
const STAGES: [&str; 8] = [
    "upload",
    "validation",
    "classification",
    "extraction",
    "analysis",
    "criteria_detection",
    "ticket_generation",
    "storage",
];

fn sibling(name: &str) -> PathBuf {
    sibling_binary(env!("CARGO_BIN_EXE_dlq-admin"), name)
}

fn text_invoice(number: &str) -> Vec<u8> {
    format!(
        "ACME Supplies GmbH\nInvoice\nInvoice number: {number}\nInvoice date: 2026-03-01\nDue date: 2026-03-31\n\
         VAT ID: DE123456789\nIBAN: DE89 3704 0044 0532 0130 00\nNet amount: 1,000.00 EUR\nVAT 19%: 190.00 EUR\n\
         Total: 1,190.00 EUR\n"
    )
    .into_bytes()
}

/// The services as processes in a fresh database and namespace.
struct Platform {
    db: TestDb,
    _broker: TestBroker,
    blob_dir: PathBuf,
    log_dir: PathBuf,
    http: reqwest::Client,
    ingest: Option<Service>,
    admin: Service,
    others: Vec<Service>,
}

impl Platform {
    /// dlq-admin always; with `pipeline`, also ingest-api, a worker and metrics-tracker.
    async fn start(pipeline: bool) -> Platform {
        let db = TestDb::new().await;
        let mut broker = TestBroker::new();
        broker.retry_policy =
            Some(job_model::RetryPolicy { base: Duration::from_millis(50), cap: Duration::from_millis(100) });
        let suffix = unique_suffix();
        let blob_dir = std::env::temp_dir().join(format!("docflow-console-blobs-{suffix}"));
        let log_dir = std::env::temp_dir().join(format!("docflow-console-logs-{suffix}"));
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
            ("JAEGER_UI_URL", "http://jaeger.invalid:16686".to_owned()),
        ]
        .into_iter()
        .collect();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        // Migrations first, once, so the processes do not race to apply them.
        let admin = Service::spawn("dlq-admin", &sibling("dlq-admin"), &env, &log_dir);
        admin.ready(&http).await;
        let mut others = Vec::new();
        let mut ingest = None;
        if pipeline {
            let i = Service::spawn("ingest-api", &sibling("ingest-api"), &env, &log_dir);
            let w = Service::spawn("worker", &sibling("worker"), &env, &log_dir);
            let m = Service::spawn("metrics-tracker", &sibling("metrics-tracker"), &env, &log_dir);
            for s in [&i, &w, &m] {
                s.ready(&http).await;
            }
            others.extend([w, m]);
            ingest = Some(i);
        }
        Platform { db, _broker: broker, blob_dir, log_dir, http, ingest, admin, others }
    }

    /// Submits a document whose blob is `content` (or, with None, a
    /// symlink to itself: reading it fails with a retryable error, so the
    /// job is dead-lettered after its one retry). Returns the job id.
    async fn submit(&self, document_id: &str, content: Option<&[u8]>) -> String {
        let path = format!("in/{document_id}/invoice.txt");
        let blob = self.blob_dir.join(&path);
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        match content {
            Some(bytes) => std::fs::write(&blob, bytes).unwrap(),
            None => std::os::unix::fs::symlink(&blob, &blob).unwrap(),
        }
        let size = content.map_or(text_invoice("X").len(), <[u8]>::len);
        let ingest = self.ingest.as_ref().expect("started with the pipeline");
        let r = self
            .http
            .post(ingest.url("/api/process-async"))
            .bearer_auth(API_KEY)
            .json(&json!({"document_id": document_id, "filename": "invoice.txt", "blob_path": path,
                          "file_size": size, "priority": "HIGH", "tags": {"customer": "acme"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned()
    }

    async fn status_of(&self, job_id: &str) -> String {
        sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1::uuid")
            .bind(job_id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn wait_for(&self, job_id: &str, status: &str) {
        let what = format!("job {job_id} to be {status} (logs in {})", self.log_dir.display());
        eventually(Duration::from_secs(90), &what, || async { (self.status_of(job_id).await == status).then_some(()) })
            .await;
    }

    fn base(&self) -> String {
        self.admin.url("")
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.others.clear();
        self.ingest = None;
        let _ = std::fs::remove_dir_all(&self.blob_dir);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

async fn stage_names(browser: &Browser, attempt: i32) -> Vec<String> {
    let mut names = Vec::new();
    for g in browser.all(&format!("section.attempt[data-attempt='{attempt}'] svg g.stage")).await {
        names.push(g.attr("data-stage").await.unwrap().unwrap_or_default());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_a_job_sees_its_stages_and_retries_a_dead_letter_from_the_browser() {
    let p = Platform::start(true).await;
    let good = p.submit("console-e2e-ok", Some(&text_invoice("INV-CONSOLE-1"))).await;
    let bad = p.submit("console-e2e-dlq", None).await;
    p.wait_for(&good, "COMPLETED").await;
    p.wait_for(&bad, "DLQ").await;

    let browser = Browser::start(&p.base()).await;
    // A page asks for a login first and comes back to it afterwards.
    browser.goto("/jobs").await;
    assert_eq!(browser.path().await, "/login?next=%2Fjobs");
    browser.log_in(WRITE_TOKEN).await;
    assert_eq!(browser.path().await, "/jobs");
    assert_eq!(browser.find("[data-role]").await.attr("data-role").await.unwrap().as_deref(), Some("write"));

    // Found by document id; its page shows the eight stages of its attempt.
    browser.fill("#q", "console-e2e-ok").await;
    browser.click_to_navigate("form[role=search] button[type=submit]").await;
    let rows = browser.all("#jobs tbody tr").await;
    assert_eq!(rows.len(), 1, "one job has this document id");
    browser.click_to_navigate(&format!("#jobs a[href='/jobs/{good}']")).await;
    assert_eq!(browser.path().await, format!("/jobs/{good}"));
    assert_eq!(browser.find("#job-status").await.attr("data-status").await.unwrap().as_deref(), Some("COMPLETED"));
    assert_eq!(stage_names(&browser, 1).await, STAGES);
    let timeline: Vec<String> = {
        let mut v = Vec::new();
        for li in browser.all("#timeline li").await {
            v.push(li.attr("data-to").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert_eq!(timeline, ["QUEUED", "PROCESSING", "COMPLETED"]);
    assert!(!browser.all("#fields tr[data-field='invoice_number']").await.is_empty(), "extracted fields are shown");
    let trace = sqlx::query_scalar::<_, String>("SELECT trace_id FROM jobs WHERE job_id = $1::uuid")
        .bind(&good)
        .fetch_one(&p.db.pool)
        .await
        .unwrap();
    assert_eq!(
        browser.find("#trace-link").await.attr("href").await.unwrap(),
        Some(format!("http://jaeger.invalid:16686/trace/{trace}"))
    );
    browser.screenshot("job", DESKTOP.0).await;

    // Tags search too.
    browser.goto("/jobs?q=customer%3Dacme").await;
    assert_eq!(browser.all("#jobs tbody tr").await.len(), 2);

    // The dead letter: grouped, then retried from the list with a reason,
    // once the fault is gone.
    let blob = p.blob_dir.join("in/console-e2e-dlq/invoice.txt");
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, text_invoice("X")).unwrap();
    browser.goto("/dead-letters").await;
    assert_eq!(browser.all("#groups tbody tr").await.len(), 1);
    browser.screenshot("dead-letters", DESKTOP.0).await;
    browser.screenshot("dead-letters-phone", 390).await;
    browser.goto("/dead-letters?view=list").await;
    browser.screenshot("dead-letters-list", DESKTOP.0).await;
    let row = format!("#dlq-items tr[data-id='{bad}']");
    browser.fill(&format!("{row} form[action$='/retry'] input[name=reason]"), "blob store repaired").await;
    browser.click(&format!("{row} button.retry")).await;
    browser.client().accept_alert().await.expect("the retry asks for confirmation");
    let notice = eventually(Duration::from_secs(10), "the retry's notice", || async {
        browser.client().find(fantoccini::Locator::Css(".notice")).await.ok()?.text().await.ok()
    })
    .await;
    assert!(notice.contains("retried"), "{notice}");
    p.wait_for(&bad, "COMPLETED").await;
    browser.goto(&format!("/jobs/{bad}")).await;
    assert_eq!(browser.find("#job-status").await.attr("data-status").await.unwrap().as_deref(), Some("COMPLETED"));
    assert_eq!(stage_names(&browser, 3).await, STAGES, "the retried attempt ran every stage");

    // The audit row: who, what, why.
    browser.goto("/audit").await;
    let audit = format!("#audit tr[data-action='retry'][data-target='{bad}']");
    assert_eq!(browser.all(&audit).await.len(), 1);
    assert_eq!(browser.text(&format!("{audit} td.reason")).await, "blob store repaired");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_audit WHERE action = 'retry' AND reason = $1")
        .bind("blob store repaired")
        .fetch_one(&p.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // The overview, once metrics-tracker has recorded the attempts.
    eventually(Duration::from_secs(60), "the overview to count the attempts", || async {
        browser.goto("/").await;
        let n: i64 = browser.text("#executions").await.parse().ok()?;
        (n >= 4).then_some(())
    })
    .await;
    assert_eq!(browser.all("#stages tbody tr").await.len(), 8);
    browser.screenshot("overview", DESKTOP.0).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_sees_no_write_button_and_forged_or_csrf_less_posts_are_refused() {
    let p = Platform::start(false).await;
    let ids = DlqJobs { count: 2, ..Default::default() }.insert(&p.db.pool).await;
    let target = ids[0];
    let browser = Browser::start(&p.base()).await;

    // A wrong token is refused at the form.
    browser.goto("/login").await;
    browser.log_in("not-a-token").await;
    assert!(browser.path().await.starts_with("/login"));
    assert_eq!(
        browser.find("[data-error-code]").await.attr("data-error-code").await.unwrap().as_deref(),
        Some("unauthorized")
    );

    browser.log_in(READ_TOKEN).await;
    assert_eq!(browser.find("[data-role]").await.attr("data-role").await.unwrap().as_deref(), Some("read-only"));
    browser.goto("/dead-letters?view=list").await;
    assert_eq!(browser.all("#dlq-items tbody tr").await.len(), 2, "a read token sees the items");
    assert!(browser.all("button.retry, button.delete, form[action*='/dead-letters/']").await.is_empty());
    browser.goto("/dead-letters").await;
    assert!(browser.all("form[action='/dead-letters/bulk-retry']").await.is_empty());
    browser.goto(&format!("/jobs/{target}")).await;
    assert!(browser.all("#retry").await.is_empty());
    browser.find("#read-only-note").await;

    // A forged POST with the read session's own CSRF token: 403 forbidden.
    let csrf = browser.find("input[name=csrf]").await.attr("value").await.unwrap().unwrap();
    let (status, body) =
        browser.post_form(&format!("/dead-letters/{target}/retry"), &[("csrf", &csrf), ("reason", "forged")]).await;
    assert_eq!(status, 403);
    assert!(body.contains(r#"data-error-code="forbidden""#), "{body}");

    // A write session: without its CSRF token, or with another, refused too.
    browser.click_to_navigate("form[action='/logout'] button").await;
    assert!(browser.path().await.starts_with("/login"));
    browser.goto("/dead-letters").await;
    assert!(browser.path().await.starts_with("/login"), "logged out");
    browser.log_in(WRITE_TOKEN).await;
    let path = format!("/dead-letters/{target}/retry");
    let (status, body) = browser.post_form(&path, &[("reason", "no token")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains(r#"data-error-code="invalid_csrf_token""#), "{body}");
    let (status, body) = browser.post_form(&path, &[("csrf", &csrf), ("reason", "old token")]).await;
    assert_eq!(status, 403, "the read session's token is not the write session's");
    assert!(body.contains(r#"data-error-code="invalid_csrf_token""#), "{body}");

    let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
        .bind(target)
        .fetch_one(&p.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "DLQ", "nothing was retried");
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_audit").fetch_one(&p.db.pool).await.unwrap();
    assert_eq!(audited, 0);

    // With its own token the same POST goes through (the refusals above
    // were about the token, not the request).
    browser.goto("/dead-letters?view=list").await;
    let csrf = browser.find("input[name=csrf]").await.attr("value").await.unwrap().unwrap();
    let (status, _) = browser.post_form(&path, &[("csrf", &csrf), ("reason", "checked")]).await;
    assert_eq!(status, 0, "a redirect (opaque to a manual-redirect fetch) after the change");
    let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
        .bind(target)
        .fetch_one(&p.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "QUEUED");
    browser.close().await;
}

/// What has the keyboard focus: `tag#id[name]` of the active element.
async fn focused(browser: &Browser) -> String {
    let script = "const e = document.activeElement; \
                  return e.tagName.toLowerCase() + '#' + (e.id || '') + '[' + (e.getAttribute('name') || '') + ']';";
    browser.client().execute(script, vec![]).await.unwrap().as_str().unwrap_or_default().to_owned()
}

async fn press(browser: &Browser, keys: &str) {
    browser.client().active_element().await.unwrap().send_keys(keys).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_and_a_dead_letter_is_retried_by_keyboard_alone() {
    use fantoccini::key::Key;
    let p = Platform::start(false).await;
    let ids = DlqJobs { count: 2, ..Default::default() }.insert(&p.db.pool).await;
    sqlx::query(
        "INSERT INTO tickets (job_id, attempt, rule, severity, message) \
         VALUES ($1, 1, 'possible_duplicate', 'medium', 'same invoice number and supplier as an earlier document')",
    )
    .bind(ids[0])
    .execute(&p.db.pool)
    .await
    .unwrap();
    let browser = Browser::start(&p.base()).await;

    // Log in with the keyboard: the token field has the focus on arrival.
    browser.goto("/login").await;
    assert_eq!(focused(&browser).await, "input#token[token]");
    press(&browser, WRITE_TOKEN).await;
    press(&browser, &char::from(Key::Enter).to_string()).await;
    eventually(Duration::from_secs(20), "the login by Enter", || async {
        (!browser.path().await.starts_with("/login")).then_some(())
    })
    .await;

    // At a phone's width no page scrolls sideways (tables stack their cells).
    browser.client().set_window_size(390, 844).await.unwrap();
    let job = format!("/jobs/{}", ids[0]);
    for page in ["/", "/jobs", "/dead-letters", "/dead-letters?view=list", job.as_str(), "/tickets", "/audit"] {
        browser.goto(page).await;
        let overflow = browser
            .client()
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
            .await
            .unwrap()
            .as_i64()
            .unwrap();
        assert!(overflow <= 0, "{page} is {overflow} px wider than a 390 px screen");
    }
    browser.goto("/tickets").await;
    browser.screenshot("tickets-phone", 390).await;
    browser.screenshot("tickets", DESKTOP.0).await;

    // Retry a dead letter with Tab, typing and Enter only: Tab reaches the
    // first item's reason field, the next Tab its Retry button.
    browser.goto("/dead-letters?view=list").await;
    let row_form = format!("/dead-letters/{}/retry", ids[0]);
    let mut reached = false;
    for _ in 0..80 {
        press(&browser, &char::from(Key::Tab).to_string()).await;
        let script = "const f = document.activeElement.closest('form'); return f ? f.getAttribute('action') : '';";
        let form = browser.client().execute(script, vec![]).await.unwrap();
        if form.as_str() == Some(row_form.as_str()) && focused(&browser).await.ends_with("[reason]") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the retry form of {}", ids[0]);
    press(&browser, "fixed by keyboard").await;
    press(&browser, &char::from(Key::Tab).to_string()).await;
    assert!(focused(&browser).await.starts_with("button#"), "then its button: {}", focused(&browser).await);
    press(&browser, &char::from(Key::Enter).to_string()).await;
    browser.client().accept_alert().await.expect("the retry asks for confirmation");
    eventually(Duration::from_secs(20), "the retry by keyboard", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
            .bind(ids[0])
            .fetch_one(&p.db.pool)
            .await
            .ok()?;
        (status != "DLQ").then_some(())
    })
    .await;
    let reason: String = sqlx::query_scalar("SELECT reason FROM admin_audit WHERE action = 'retry'")
        .fetch_one(&p.db.pool)
        .await
        .unwrap();
    assert_eq!(reason, "fixed by keyboard");
    browser.close().await;
}
