use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use job_model::{AttemptOutcome, ExecutionEvent, JobPriority, StageTiming};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use metrics_tracker::{Application, Config};
use serde_json::Value;
use sqlx::PgPool;
use test_support::{TcpProxy, TestBroker, TestDb, eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const READ_TOKEN: &str = "reader-token";
pub const WRITE_TOKEN: &str = "writer-token";
pub const STAGES: [&str; 8] = [
    "upload",
    "validation",
    "classification",
    "extraction",
    "analysis",
    "criteria_detection",
    "ticket_generation",
    "storage",
];
/// Long enough for a loaded 2-core machine; never a timing assertion.
pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Options {
    pub args: Vec<String>,
    /// Route the service's broker connection through a proxy the test can cut.
    pub proxy_broker: bool,
}

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub broker: TestBroker,
    pub http: reqwest::Client,
    pub amqp_proxy: Option<TcpProxy>,
    /// The test's own connection, for publishing (declared the namespace's topology).
    _connection: Connection,
    publisher: Channel,
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
        // Declared before anything is published, so no event is unroutable.
        let connection = broker.declare().await;
        let publisher = connection.create_channel().await.unwrap();
        publisher.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        let amqp_proxy =
            if options.proxy_broker { Some(TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await) } else { None };
        let amqp_url = amqp_proxy
            .as_ref()
            .map(|p| format!("amqp://guest:guest@{}/%2f", p.addr()))
            .unwrap_or_else(|| broker.amqp_url.clone());

        let mut args: Vec<String> = [
            "metrics-tracker",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
            "--database-max-connections",
            "4",
            // Fresh gauges on every scrape.
            "--metrics-sample-interval-ms",
            "0",
            "--amqp-url",
            &amqp_url,
            "--namespace",
            &broker.namespace,
            "--admin-tokens",
            &format!("{READ_TOKEN}:read,{WRITE_TOKEN}:write"),
            "--http-workers",
            "2",
            "--batch-linger-ms",
            "20",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(options.args);
        let config = Config::parse_from(args);
        let app = Application::build(config).await.expect("metrics-tracker builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        TestApp {
            base,
            db,
            broker,
            http,
            amqp_proxy,
            _connection: connection,
            publisher,
            shutdown,
            server: Some(server),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(READ_TOKEN).send().await.unwrap()
    }

    /// GETs a path that must answer 200 with JSON.
    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Publishes raw bytes on the events exchange and waits for the broker's confirm.
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        let confirm = self
            .publisher
            .basic_publish(
                self.broker.topology.events_exchange().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into()),
            )
            .await
            .unwrap();
        let confirmation = confirm.await.unwrap();
        assert!(confirmation.is_ack(), "the broker refused an event");
    }

    pub async fn publish(&self, events: &[ExecutionEvent]) {
        for event in events {
            self.publish_raw(&event.routing_key(), &serde_json::to_vec(event).unwrap()).await;
        }
    }

    /// One sample of a metric, by its name with labels as exposed (e.g.
    /// `docflow_metrics_events_total{result="recorded"}`); 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let body = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        parse_metric(&body, series).unwrap_or(0.0)
    }

    /// Waits until the consumer has recorded `recorded` and skipped `duplicates` events.
    pub async fn consumed(&self, recorded: u64, duplicates: u64, malformed: u64) {
        eventually(
            WAIT,
            &format!("{recorded} recorded, {duplicates} duplicate, {malformed} malformed events"),
            || async {
                let body = self.http.get(self.url("/metrics")).send().await.ok()?.text().await.ok()?;
                let got = |r: &str| {
                    parse_metric(&body, &format!("docflow_metrics_events_total{{result=\"{r}\"}}")).unwrap_or(0.0)
                };
                let now = (got("recorded") as u64, got("duplicate") as u64, got("malformed") as u64);
                assert!(
                    now.0 <= recorded && now.1 <= duplicates && now.2 <= malformed,
                    "consumed more than expected: {now:?}"
                );
                (now == (recorded, duplicates, malformed)).then_some(())
            },
        )
        .await
    }

    /// Inserts `n` jobs with a status and priority straight into `jobs`.
    pub async fn insert_jobs(&self, n: i64, status: &str, priority: JobPriority) {
        sqlx::query(
            "INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, max_retries, request_hash) \
             SELECT gen_random_uuid(), 'doc-' || i, 'f.pdf', 'in/f.pdf', 1, $2, $3, 3, '\\x00'::bytea \
             FROM generate_series(1, $1) AS i",
        )
        .bind(n)
        .bind(priority.value())
        .bind(status)
        .execute(self.pool())
        .await
        .unwrap();
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

pub fn parse_metric(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

/// A deterministic generator (splitmix64), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform between `lo` and `hi`: long-tailed like real latencies.
    pub fn log_between(&mut self, lo: f64, hi: f64) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }
}

/// Typical stage latency ranges in ms: extraction dominates.
pub fn stage_range(stage: &str) -> (f64, f64) {
    match stage {
        "upload" => (5.0, 120.0),
        "validation" => (0.5, 40.0),
        "classification" => (10.0, 250.0),
        "extraction" => (80.0, 900.0),
        "analysis" => (20.0, 320.0),
        "criteria_detection" => (2.0, 110.0),
        "ticket_generation" => (1.0, 90.0),
        _ => (5.0, 160.0),
    }
}

/// An event with the given stage durations; the last stage fails when the
/// outcome is not `completed`.
pub fn event_with(
    job_id: Uuid,
    attempt: i32,
    priority: JobPriority,
    outcome: AttemptOutcome,
    durations: &[f64],
    queue_wait_ms: f64,
    finished_at: DateTime<Utc>,
) -> ExecutionEvent {
    let overhead = 3.0;
    let total: f64 = durations.iter().sum::<f64>() + overhead;
    let started_at = finished_at - TimeDelta::microseconds((total * 1000.0) as i64);
    let mut offset = 1.0;
    let stages = durations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let failed = outcome != AttemptOutcome::Completed && i == durations.len() - 1;
            let stage = StageTiming {
                seq: i as i16 + 1,
                stage: STAGES[i].to_owned(),
                status: if failed { "failed" } else { "succeeded" }.to_owned(),
                started_at: started_at + TimeDelta::microseconds((offset * 1000.0) as i64),
                offset_ms: offset,
                duration_ms: *d,
                items_processed: 1,
                bytes_processed: 1000 + i as i64,
                error: failed.then(|| format!("{} failed", STAGES[i])),
            };
            offset += d;
            stage
        })
        .collect();
    ExecutionEvent {
        schema_version: 1,
        job_id,
        attempt,
        document_id: format!("doc-{job_id}"),
        priority,
        outcome,
        error_message: (outcome != AttemptOutcome::Completed).then(|| "stage failed".to_owned()),
        error_stage: (outcome != AttemptOutcome::Completed).then(|| STAGES[durations.len() - 1].to_owned()),
        worker_id: "worker-test".into(),
        submitted_at: started_at - TimeDelta::microseconds((queue_wait_ms * 1000.0) as i64),
        started_at,
        finished_at,
        queue_wait_ms,
        total_duration_ms: total,
        stages,
        trace_id: Some(format!("{:032x}", job_id.as_u128())),
    }
}

/// A simple completed event with a chosen total (one stage carries it).
pub fn completed_with_total(total_ms: f64) -> ExecutionEvent {
    event_with(Uuid::now_v7(), 1, JobPriority::Normal, AttemptOutcome::Completed, &[total_ms - 3.0], 10.0, Utc::now())
}

pub fn failed_event() -> ExecutionEvent {
    event_with(Uuid::now_v7(), 1, JobPriority::Normal, AttemptOutcome::Failed, &[5.0, 1.0], 10.0, Utc::now())
}

/// `n` attempts of a realistic mix: all priorities and outcomes, failing
/// stages, retries (attempt 2 after a retrying attempt 1), finished over the
/// last 50 minutes.
pub fn mixed_events(n: usize, seed: u64) -> Vec<ExecutionEvent> {
    let mut rng = Rng::new(seed);
    let now = Utc::now();
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let job_id = Uuid::now_v7();
        let priority = JobPriority::ALL[(rng.next_u64() % 3) as usize];
        let roll = rng.unit();
        let outcome = match roll {
            r if r < 0.80 => AttemptOutcome::Completed,
            r if r < 0.88 => AttemptOutcome::Retrying,
            r if r < 0.94 => AttemptOutcome::Failed,
            _ => AttemptOutcome::Dlq,
        };
        let stage_count = if outcome == AttemptOutcome::Completed { 8 } else { 1 + (rng.next_u64() % 8) as usize };
        let durations: Vec<f64> = (0..stage_count)
            .map(|i| {
                let (lo, hi) = stage_range(STAGES[i]);
                rng.log_between(lo, hi)
            })
            .collect();
        let wait = match priority {
            JobPriority::High => rng.log_between(2.0, 400.0),
            JobPriority::Normal => rng.log_between(10.0, 4000.0),
            JobPriority::Low => rng.log_between(50.0, 60_000.0),
        };
        let finished = now - TimeDelta::milliseconds((rng.unit() * 50.0 * 60_000.0) as i64);
        events.push(event_with(job_id, 1, priority, outcome, &durations, wait, finished));
        if outcome == AttemptOutcome::Retrying && events.len() < n {
            let durations: Vec<f64> =
                STAGES.iter().map(|s| stage_range(s)).map(|(lo, hi)| rng.log_between(lo, hi)).collect();
            let later = finished + TimeDelta::seconds(2);
            events.push(event_with(
                job_id,
                2,
                priority,
                AttemptOutcome::Completed,
                &durations,
                wait + 2500.0,
                later.min(now),
            ));
        }
    }
    events
}

/// Waits until the consumer holds a broker connection (per /readyz).
pub async fn consumer_connected(app: &TestApp, connected: bool) {
    eventually(WAIT, &format!("consumer connected = {connected}"), || async {
        let body: Value = app.http.get(app.url("/readyz")).send().await.ok()?.json().await.ok()?;
        let ok = body["checks"].as_array()?.iter().any(|c| c["name"] == "rabbitmq" && c["ok"] == connected);
        ok.then_some(())
    })
    .await
}
