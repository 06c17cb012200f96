use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ingest_api::{Application, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{TcpProxy, TestBroker, TestDb, eventually, unique_suffix};
use tokio_util::sync::CancellationToken;

pub const API_KEY: &str = "test-key-1";

/// Which connections go through a proxy the test can cut.
#[derive(Default)]
pub struct Options {
    pub proxy_postgres: bool,
    pub proxy_broker: bool,
    pub args: Vec<String>,
}

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub broker: TestBroker,
    pub http: reqwest::Client,
    pub blob_dir: PathBuf,
    pub pg_proxy: Option<TcpProxy>,
    pub amqp_proxy: Option<TcpProxy>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let db = TestDb::new().await;
        let broker = TestBroker::new();
        let pg_proxy =
            if options.proxy_postgres { Some(TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await) } else { None };
        let amqp_proxy =
            if options.proxy_broker { Some(TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await) } else { None };
        let database_url = pg_proxy.as_ref().map(|p| db.url_via(p.addr())).unwrap_or_else(|| db.url.clone());
        let amqp_url = amqp_proxy
            .as_ref()
            .map(|p| format!("amqp://guest:guest@{}/%2f", p.addr()))
            .unwrap_or_else(|| broker.amqp_url.clone());
        let blob_dir = std::env::temp_dir().join(format!("docflow-blobs-{}", unique_suffix()));

        let mut args: Vec<String> = [
            "ingest-api",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            &database_url,
            "--database-acquire-timeout-ms",
            "1000",
            "--metrics-sample-interval-ms",
            "0",
            "--amqp-url",
            &amqp_url,
            "--namespace",
            &broker.namespace,
            "--blob-store-url",
            &format!("file://{}", blob_dir.display()),
            "--api-keys",
            API_KEY,
            "--http-workers",
            "2",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        if !options.args.iter().any(|a| a == "--outbox-poll-interval-ms") {
            args.extend(["--outbox-poll-interval-ms".to_owned(), "100".to_owned()]);
        }
        args.extend(options.args);
        let config = Config::parse_from(args);
        let app = Application::build(config).await.expect("ingest-api builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        TestApp { base, db, broker, http, blob_dir, pg_proxy, amqp_proxy, shutdown, server: Some(server) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn submit(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/api/process-async")).bearer_auth(API_KEY).json(body).send().await.unwrap()
    }

    pub async fn submit_with_key(&self, body: &Value, key: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/process-async"))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(API_KEY).send().await.unwrap()
    }

    /// A sample of `/metrics` without labels; `None` until it is there.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.http.get(self.url("/metrics")).send().await.ok()?.text().await.ok()?;
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    pub async fn job_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&self.db.pool).await.unwrap()
    }

    pub async fn outbox_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&self.db.pool).await.unwrap()
    }

    /// Waits until the relay has published everything in the outbox.
    pub async fn outbox_drained(&self) {
        eventually(Duration::from_secs(30), "the outbox to drain", || async {
            (self.outbox_count().await == 0).then_some(())
        })
        .await
    }

    /// Waits until the relay holds a broker connection.
    pub async fn broker_connected(&self) {
        eventually(Duration::from_secs(30), "the relay to connect", || async {
            let body: Value = self.http.get(self.url("/readyz")).send().await.ok()?.json().await.ok()?;
            let ok = body["checks"].as_array()?.iter().any(|c| c["name"] == "rabbitmq" && c["ok"] == true);
            ok.then_some(())
        })
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let _ = std::fs::remove_dir_all(&self.blob_dir);
    }
}

pub fn valid_body(document_id: &str) -> Value {
    json!({
        "document_id": document_id,
        "filename": "invoice-2026-001.pdf",
        "blob_path": "incoming/acme/invoice-2026-001.pdf",
        "file_size": 48213,
        "priority": "NORMAL",
        "tags": {"customer": "acme"}
    })
}

/// Asserts an error answer: status, machine-readable code, and the shape.
pub async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "for expected code {code}");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}
