//! The real binaries as processes, against a fresh database and namespace.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use job_model::RetryPolicy;
use serde_json::{Value, json};
use test_support::{TestBroker, TestDb, eventually, unique_suffix};

pub const API_KEY: &str = "e2e-key";

pub use test_support::process::{ServiceProcess as Service, free_port};

pub fn worker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worker"))
}

/// ingest-api is built next to the worker by the same `cargo test` run.
pub fn ingest_bin() -> PathBuf {
    test_support::process::sibling_binary(env!("CARGO_BIN_EXE_worker"), "ingest-api")
}

/// dlq-admin, likewise.
pub fn dlq_admin_bin() -> PathBuf {
    test_support::process::sibling_binary(env!("CARGO_BIN_EXE_worker"), "dlq-admin")
}

/// metrics-tracker, likewise built by the workspace's test run.
pub fn metrics_tracker_bin() -> PathBuf {
    test_support::process::sibling_binary(env!("CARGO_BIN_EXE_worker"), "metrics-tracker")
}

pub struct Platform {
    pub db: TestDb,
    pub broker: TestBroker,
    pub blob_dir: PathBuf,
    pub log_dir: PathBuf,
    pub env: HashMap<String, String>,
    pub ingest: Service,
    pub workers: Vec<Service>,
    pub metrics_tracker: Option<Service>,
    pub dlq_admin: Option<Service>,
    pub http: reqwest::Client,
}

/// Settings for a platform run.
pub struct Setup {
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub workers: usize,
    pub worker_env: Vec<(&'static str, String)>,
    /// Environment for every service.
    pub extra_env: Vec<(&'static str, String)>,
    pub amqp_url: Option<String>,
    /// Every service reaches Postgres through this address (a test's proxy)
    /// instead of directly; the test's own pool stays direct.
    pub database_via: Option<std::net::SocketAddr>,
    /// The admin URL of a test's own Postgres to create the database on,
    /// instead of the shared one (a test that crashes the server).
    pub database_server: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            max_retries: 3,
            retry_base_ms: 100,
            retry_max_ms: 400,
            workers: 1,
            worker_env: Vec::new(),
            extra_env: Vec::new(),
            amqp_url: None,
            database_via: None,
            database_server: None,
        }
    }
}

impl Platform {
    pub async fn start(setup: Setup) -> Platform {
        let db = match &setup.database_server {
            Some(admin_url) => TestDb::new_on(admin_url).await,
            None => TestDb::new().await,
        };
        let mut broker = TestBroker::new();
        broker.retry_policy = Some(RetryPolicy {
            base: Duration::from_millis(setup.retry_base_ms),
            cap: Duration::from_millis(setup.retry_max_ms),
        });
        let suffix = unique_suffix();
        let blob_dir = std::env::temp_dir().join(format!("docflow-e2e-blobs-{suffix}"));
        let log_dir = std::env::temp_dir().join(format!("docflow-e2e-logs-{suffix}"));
        std::fs::create_dir_all(&blob_dir).unwrap();
        std::fs::create_dir_all(&log_dir).unwrap();
        let env: HashMap<String, String> = [
            ("DATABASE_URL", setup.database_via.map_or_else(|| db.url.clone(), |addr| db.url_via(addr))),
            ("AMQP_URL", setup.amqp_url.clone().unwrap_or_else(|| broker.amqp_url.clone())),
            ("DOCFLOW_NAMESPACE", broker.namespace.clone()),
            ("BLOB_STORE_URL", format!("file://{}", blob_dir.display())),
            ("INGEST_API_KEYS", API_KEY.to_owned()),
            ("RABBITMQ_MAX_RETRIES", setup.max_retries.to_string()),
            ("RETRY_BASE_DELAY_MS", setup.retry_base_ms.to_string()),
            ("RETRY_MAX_DELAY_MS", setup.retry_max_ms.to_string()),
            ("OUTBOX_POLL_INTERVAL_MS", "100".to_owned()),
            ("WORKER_LEASE_SECONDS", "10".to_owned()),
            ("WORKER_REAPER_INTERVAL_SECONDS", "0.5".to_owned()),
            ("WORKER_COUNT", "4".to_owned()),
        ]
        .into_iter()
        .chain(setup.extra_env.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let ingest = Service::spawn("ingest-api", &ingest_bin(), &env, &log_dir);
        // actix-web closes an idle keep-alive connection after 5 s; a pooled
        // connection kept longer is reused just as the server closes it, and
        // the request fails with IncompleteMessage. Drop idle ones first.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let mut platform = Platform {
            db,
            broker,
            blob_dir,
            log_dir,
            env,
            ingest,
            workers: Vec::new(),
            metrics_tracker: None,
            dlq_admin: None,
            http,
        };
        platform.wait_ready(platform.ingest.port, "ingest-api").await;
        for _ in 0..setup.workers {
            platform.start_worker(&setup.worker_env).await;
        }
        platform
    }

    pub async fn start_metrics_tracker(&mut self) {
        let mut env = self.env.clone();
        env.insert("ADMIN_TOKENS".into(), "e2e-admin:read".into());
        let tracker = Service::spawn("metrics-tracker", &metrics_tracker_bin(), &env, &self.log_dir);
        let port = tracker.port;
        self.metrics_tracker = Some(tracker);
        self.wait_ready(port, "metrics-tracker").await;
    }

    pub async fn start_dlq_admin(&mut self) {
        let mut env = self.env.clone();
        env.insert("ADMIN_TOKENS".into(), "e2e-admin:read".into());
        let admin = Service::spawn("dlq-admin", &dlq_admin_bin(), &env, &self.log_dir);
        let port = admin.port;
        self.dlq_admin = Some(admin);
        self.wait_ready(port, "dlq-admin").await;
    }

    pub async fn start_worker(&mut self, extra: &[(&'static str, String)]) {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert((*k).to_owned(), v.clone());
        }
        let name = format!("worker-{}", self.workers.len());
        let worker = Service::spawn(&name, &worker_bin(), &env, &self.log_dir);
        let port = worker.port;
        self.workers.push(worker);
        self.wait_ready(port, &name).await;
    }

    /// Replaces worker `index` (killed or stopped) with a fresh process.
    pub async fn restart_worker(&mut self, index: usize, extra: &[(&'static str, String)]) {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert((*k).to_owned(), v.clone());
        }
        let name = format!("worker-{index}");
        self.workers[index].kill9();
        // Keep the old log beside the new one: a failure needs both.
        let old = self.workers[index].log.clone();
        let _ = std::fs::rename(&old, old.with_extension(format!("{}.log", unique_suffix())));
        self.workers[index] = Service::spawn(&name, &worker_bin(), &env, &self.log_dir);
        let port = self.workers[index].port;
        self.wait_ready(port, &name).await;
    }

    async fn wait_ready(&self, port: u16, name: &str) {
        let url = format!("http://127.0.0.1:{port}/readyz");
        let http = &self.http;
        let what = format!("{name} to be ready (logs in {})", self.log_dir.display());
        eventually(Duration::from_secs(60), &what, || async {
            http.get(&url).send().await.ok()?.status().is_success().then_some(())
        })
        .await;
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ingest.port)
    }

    /// Puts a document in the blob store.
    pub fn put_blob(&self, path: &str, bytes: &[u8]) {
        let full = self.blob_dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    }

    /// Submits a blob already in the store; returns the job id.
    pub async fn submit(&self, document_id: &str, blob_path: &str, file_size: usize, priority: &str) -> String {
        let body = json!({
            "document_id": document_id,
            "filename": blob_path.rsplit('/').next().unwrap(),
            "blob_path": blob_path,
            "file_size": file_size,
            "priority": priority,
        });
        let response =
            self.http.post(self.api("/api/process-async")).bearer_auth(API_KEY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 202, "submit {document_id}");
        let accepted: Value = response.json().await.unwrap();
        accepted["job_id"].as_str().unwrap().to_owned()
    }

    /// Stores and submits a document in one go.
    pub async fn submit_document(&self, document_id: &str, name: &str, bytes: &[u8], priority: &str) -> String {
        let path = format!("in/{document_id}/{name}");
        self.put_blob(&path, bytes);
        self.submit(document_id, &path, bytes.len(), priority).await
    }

    pub async fn status(&self, job_id: &str) -> Value {
        let response =
            self.http.get(self.api(&format!("/api/job/{job_id}/status"))).bearer_auth(API_KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until the job is COMPLETED, FAILED or DLQ; returns its status.
    pub async fn wait_final(&self, job_id: &str, timeout: Duration) -> Value {
        eventually(timeout, &format!("job {job_id} to finish (logs in {})", self.log_dir.display()), || async {
            let status = self.status(job_id).await;
            matches!(status["job_status"].as_str(), Some("COMPLETED" | "FAILED" | "DLQ")).then_some(status)
        })
        .await
    }

    /// Jobs without exactly one COMPLETED event (0 when each job completed once).
    pub async fn jobs_not_completed_exactly_once(&self) -> i64 {
        self.count(
            "SELECT count(*) FROM jobs j WHERE (SELECT count(*) FROM job_events e \
             WHERE e.job_id = j.job_id AND e.to_status = 'COMPLETED') <> 1",
        )
        .await
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.kill9();
        }
        self.ingest.kill9();
        if let Some(t) = &mut self.metrics_tracker {
            t.kill9();
        }
        let _ = std::fs::remove_dir_all(&self.blob_dir);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// A small invoice in plain text the pipeline completes.
pub fn text_invoice(number: &str) -> Vec<u8> {
    format!(
        "ACME Supplies GmbH\nRechnung / Invoice\nInvoice number: {number}\nInvoice date: 2026-03-01\nDue date: 2026-03-31\n\
         VAT ID: DE123456789\nIBAN: DE89 3704 0044 0532 0130 00\nNet amount: 1,000.00 EUR\nVAT 19%: 190.00 EUR\nTotal: 1,190.00 EUR\n"
    )
    .into_bytes()
}
