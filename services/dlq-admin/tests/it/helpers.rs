use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use dlq_admin::{Application, Config};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{TestBroker, TestDb, eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const WRITE_TOKEN: &str = "test-write-token";
pub const READ_TOKEN: &str = "test-read-token";

/// A database and a broker namespace; apps started in it share both.
pub struct World {
    pub db: TestDb,
    pub broker: TestBroker,
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl World {
    pub async fn new() -> World {
        World { db: TestDb::new().await, broker: TestBroker::new() }
    }

    /// The arguments an app in this world starts with (the sweep is off
    /// unless a test turns it on).
    pub fn args(&self) -> Vec<String> {
        [
            "dlq-admin",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            &self.db.url,
            "--database-acquire-timeout-ms",
            "1000",
            // Fresh gauges on every scrape; metrics.rs tests the throttle.
            "--metrics-sample-interval-ms",
            "0",
            "--amqp-url",
            &self.broker.amqp_url,
            "--namespace",
            &self.broker.namespace,
            "--admin-tokens",
            &format!("{WRITE_TOKEN}:write,{READ_TOKEN}:read"),
            "--outbox-poll-interval-ms",
            "100",
            "--sweep-interval-seconds",
            "0",
            "--http-workers",
            "2",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    pub async fn app(&self, extra: &[&str]) -> TestApp {
        let mut args = self.args();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.app_with(args).await
    }

    /// An app started with exactly `args`.
    pub async fn app_with(&self, args: Vec<String>) -> TestApp {
        let app = Application::build(Config::parse_from(args)).await.expect("dlq-admin builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        TestApp { base, http, shutdown, server: Some(server) }
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.db.pool
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(self.pool()).await.unwrap()
    }

    pub async fn status_of(&self, job_id: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    pub async fn audit_rows(&self) -> Vec<Value> {
        sqlx::query_scalar::<_, sqlx::types::Json<Value>>("SELECT to_jsonb(a) FROM admin_audit a ORDER BY id")
            .fetch_all(self.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.0)
            .collect()
    }

    /// Waits until every outbox row has been published.
    pub async fn outbox_drained(&self) {
        eventually(Duration::from_secs(60), "the outbox to drain", || async {
            (self.count("SELECT count(*) FROM outbox").await == 0).then_some(())
        })
        .await
    }

    /// Messages ready on the three job queues.
    pub async fn queued_messages(&self) -> u32 {
        let mut total = 0;
        for p in job_model::JobPriority::ALL {
            total += self.broker.ready_count(&self.broker.topology.job_queue(p)).await;
        }
        total
    }

    /// Publishes one persistent message with string headers, confirmed.
    pub async fn publish(&self, exchange: &str, routing_key: &str, payload: &[u8], headers: &[(&str, &str)]) {
        let conn = self.broker.declare().await;
        let channel = conn.create_channel().await.unwrap();
        channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        let mut table = FieldTable::default();
        for (k, v) in headers {
            table.insert((*k).into(), AMQPValue::LongString(LongString::from(*v)));
        }
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(2).with_headers(table),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
        let _ = conn.close(200, "done".into()).await;
    }
}

/// DLQ jobs made directly in SQL, as the worker would leave them: the row
/// and its last `job_events` row into DLQ (with the error kind and reason).
pub struct DlqJobs<'a> {
    pub count: usize,
    pub stage: &'a str,
    pub error_kind: &'a str,
    /// `{i}` is replaced by the job's index, so messages vary like real ones.
    pub error: &'a str,
    pub priority: i16,
    /// How long ago they entered the DLQ (a Postgres interval).
    pub age: &'a str,
    pub document_prefix: &'a str,
}

impl Default for DlqJobs<'_> {
    fn default() -> Self {
        DlqJobs {
            count: 1,
            stage: "upload",
            error_kind: "blob_store_unavailable",
            error: "blob_store_unavailable (retryable): timed out after 30s reading /blobs/in/doc-{i}/invoice.pdf",
            priority: 5,
            age: "1 hour",
            document_prefix: "doc",
        }
    }
}

impl DlqJobs<'_> {
    /// Inserts them; returns their ids, oldest DLQ entry first.
    pub async fn insert(&self, pool: &sqlx::PgPool) -> Vec<Uuid> {
        let ids: Vec<Uuid> = (0..self.count).map(|_| Uuid::now_v7()).collect();
        let errors: Vec<String> = (0..self.count).map(|i| self.error.replace("{i}", &i.to_string())).collect();
        sqlx::query(
            "WITH input AS ( \
                 SELECT id, err, ord FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS t(id, err, ord) \
             ), j AS ( \
                 INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, attempt, \
                                   retry_count, max_retries, error_message, error_stage, request_hash, created_at, \
                                   updated_at, started_at, dlq_at) \
                 SELECT id, $3 || '-' || ord, 'invoice.pdf', 'in/' || $3 || '-' || ord || '/invoice.pdf', 1000, $4, 'DLQ', 4, 3, 3, \
                        err, $5, '\\x00'::bytea, now() - $6::interval - interval '1 minute', \
                        now() - $6::interval + ord * interval '1 ms', now() - $6::interval - interval '1 minute', \
                        now() - $6::interval + ord * interval '1 ms' \
                 FROM input \
                 RETURNING job_id \
             ) \
             INSERT INTO job_events (job_id, from_status, to_status, actor, detail) \
             SELECT job_id, 'PROCESSING', 'DLQ', 'worker-test', \
                    jsonb_build_object('attempt', 4, 'error_kind', $7::text, 'reason', 'retries_exhausted') \
             FROM j",
        )
        .bind(&ids)
        .bind(&errors)
        .bind(self.document_prefix)
        .bind(self.priority)
        .bind(self.stage)
        .bind(self.age)
        .bind(self.error_kind)
        .execute(pool)
        .await
        .unwrap();
        ids
    }
}

/// A poison item stored directly, `age` ago.
pub async fn insert_poison(pool: &sqlx::PgPool, reason: &str, payload: &[u8], age: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO dlq_poison (item_id, reason, error_message, payload, content_hash, dlq_at) \
         VALUES ($1, $2, 'test poison', $3, sha256($3), now() - $4::interval)",
    )
    .bind(id)
    .bind(reason)
    .bind(payload)
    .bind(age)
    .execute(pool)
    .await
    .unwrap();
    id
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(WRITE_TOKEN), Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, Some(WRITE_TOKEN), Some(body)).await
    }

    /// GET with the read token, expecting 200; the JSON body.
    pub async fn read(&self, path: &str) -> Value {
        let response = self.get(path, Some(READ_TOKEN)).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn retry(&self, job_id: Uuid) -> reqwest::Response {
        self.post(&format!("/api/dlq/{job_id}/retry"), &json!({"reason": "test retry"})).await
    }

    pub async fn list_ids(&self, query: &str) -> Vec<String> {
        let body = self.read(&format!("/api/dlq?{query}")).await;
        body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Asserts an error answer: status, machine-readable code, and the shape.
pub async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(actual, status, "expected {code}: {body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// The job's events as (to_status, actor, detail).
pub async fn events(world: &World, job_id: Uuid) -> Vec<(String, String, Value)> {
    sqlx::query_as::<_, (String, String, sqlx::types::Json<Value>)>(
        "SELECT to_status, actor, detail FROM job_events WHERE job_id = $1 ORDER BY id",
    )
    .bind(job_id)
    .fetch_all(world.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(s, a, d)| (s, a, d.0))
    .collect()
}

pub fn header_map(delivery: &lapin::message::Delivery) -> BTreeMap<String, String> {
    delivery
        .properties
        .headers()
        .as_ref()
        .map(|t| {
            t.inner()
                .iter()
                .filter_map(|(k, v)| match v {
                    AMQPValue::LongString(s) => {
                        Some((k.to_string(), String::from_utf8_lossy(s.as_bytes()).into_owned()))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
