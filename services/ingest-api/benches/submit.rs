//! Durable submits per second through ingest-api, against a baseline
//! measured in the same run: the same transaction (job row, event, outbox
//! row) called directly, without HTTP, parsing or auth.
//!
//!     cargo bench -p ingest-api --bench submit
//!     BENCH_SUBMITS=20000 BENCH_CONCURRENCY=64 cargo bench -p ingest-api --bench submit
//!
//! Each round uses a fresh database and queue namespace on the local
//! Postgres and RabbitMQ. "HTTP" is the time until every 202 has arrived;
//! "published" adds the wait until the outbox relay has had every message
//! confirmed by the broker. Medians of BENCH_ROUNDS rounds (default 3).
//! Not a test: without `--bench` it exits at once.

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use ingest_api::{Application, Config};
use job_model::{JobPriority, JobRoute, NewJob, OutboxMessage, ProcessDocument};
use job_store::DedupPolicy;
use job_store::jobs as db;
use test_support::{TestBroker, TestDb};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn body(i: usize) -> serde_json::Value {
    serde_json::json!({
        "document_id": format!("bench-{i}"),
        "filename": "invoice.pdf",
        "blob_path": format!("in/bench/{i}.pdf"),
        "file_size": 48213,
        "priority": if i.is_multiple_of(10) { "HIGH" } else { "NORMAL" },
        "tags": {"customer": "acme"}
    })
}

/// The same transaction the API commits per submit, called directly.
async fn direct(n: usize, concurrency: usize) -> f64 {
    let db = TestDb::new().await;
    let topology = job_model::Topology::new("bench");
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(concurrency, |i| {
            let pool = db.pool.clone();
            let topology = topology.clone();
            async move {
                let job_id = Uuid::now_v7();
                let job = NewJob {
                    job_id,
                    document: job_model::DocumentRef {
                        document_id: format!("bench-{i}"),
                        filename: "invoice.pdf".into(),
                        blob_path: format!("in/bench/{i}.pdf"),
                        file_size: 48213,
                        priority: JobPriority::Normal,
                        tags: Default::default(),
                    },
                    max_retries: 3,
                    idempotency_key: None,
                    request_hash: [i as u8; 32],
                    trace_id: None,
                    traceparent: None,
                };
                let message = OutboxMessage::for_job(
                    &topology,
                    ProcessDocument::from(&job),
                    1,
                    JobRoute::Queue,
                    Default::default(),
                );
                let dedup = DedupPolicy { document_window: Some(Duration::from_secs(3600)) };
                db::submit_job(&mut pool.acquire().await.expect("a connection"), &job, &message, "bench", dedup, None)
                    .await
                    .expect("submit");
            }
        })
        .await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// Through the real service over HTTP; returns (202s per second, published per second).
async fn over_http(n: usize, concurrency: usize) -> (f64, f64) {
    let db = TestDb::new().await;
    let broker = TestBroker::new();
    let config = Config::parse_from([
        "ingest-api",
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
        "--amqp-url",
        &broker.amqp_url,
        "--namespace",
        &broker.namespace,
        "--insecure-no-auth",
        "--rate-limit-per-second",
        "0",
        "--blob-store-url",
        &format!("file://{}", std::env::temp_dir().join("docflow-bench-blobs").display()),
    ]);
    let app = Application::build(config).await.expect("ingest-api builds");
    let base = format!("http://127.0.0.1:{}/api/process-async", app.port());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();

    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(concurrency, |i| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let response = http.post(&base).json(&body(i)).send().await.expect("request");
                assert_eq!(response.status(), 202);
            }
        })
        .await;
    let accepted = started.elapsed();
    job_store::outbox::wait_until_empty(&db.pool, Duration::from_secs(300)).await;
    let published = started.elapsed();
    stop.cancel();
    let _ = server.await;
    (n as f64 / accepted.as_secs_f64(), n as f64 / published.as_secs_f64())
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env_or("BENCH_SUBMITS", 5000);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let rounds = env_or("BENCH_ROUNDS", 3);
    println!("ingest-api: {n} submits per round, {concurrency} in flight, {rounds} rounds");
    let (mut base, mut accepted, mut published) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let b = direct(n, concurrency).await;
        let (a, p) = over_http(n, concurrency).await;
        println!("  round {round}: direct {b:.0}/s, HTTP 202s {a:.0}/s, published {p:.0}/s");
        base.push(b);
        accepted.push(a);
        published.push(p);
    }
    let (b, a, p) = (median(base), median(accepted), median(published));
    println!("median direct transaction (baseline): {b:.0} submits/s");
    println!("median HTTP 202s:                     {a:.0} submits/s ({:.2}× baseline)", a / b);
    println!("median published (confirmed):        {p:.0} submits/s ({:.2}× baseline)", p / b);
}
