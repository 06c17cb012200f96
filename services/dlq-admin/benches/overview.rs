//! The console overview over 1,000,000 executions: how long the server
//! takes to read and draw `/` (the bar: under 300 ms).
//!
//! Setup (not timed): 1,000,000 job rows (mostly COMPLETED, some QUEUED and
//! DLQ) and the per-minute rollups of 1,000,000 executions spread over the
//! last 24 hours, written as metrics-tracker writes them (sketches from
//! `metrics_core::sketch`, one row per minute and stage, and per minute,
//! priority and outcome). dlq-admin cannot call metrics-tracker's writer
//! (no service depends on another), so the bench builds the same rows
//! itself; the overview reads only rollups and the jobs table's indexes,
//! never raw executions.
//!
//! Timed: (1) `load_overview` + `render_overview` in-process (what a
//! request costs the server), (2) `GET /` through the real HTTP stack with
//! a logged-in session (adds routing, session check and transfer on
//! loopback). Medians over BENCH_RUNS runs (default 7).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clap::Parser;
use dlq_admin::console::{OverviewSettings, load_overview, render_overview};
use metrics_core::sketch::Sketch;
use sqlx::PgPool;

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
/// A stage's typical duration in ms (the spread multiplies it by 0.2–5).
const TYPICAL_MS: [f64; 8] = [8.0, 1.5, 20.0, 120.0, 60.0, 6.0, 3.0, 15.0];

#[derive(Default)]
struct StageAgg {
    count: i64,
    failures: i64,
    sum_ms: f64,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    sum_share: f64,
    sketch: Sketch,
}

#[derive(Default)]
struct ExecAgg {
    count: i64,
    sum_total: f64,
    min_total: Option<f64>,
    max_total: Option<f64>,
    total: Sketch,
    wait_count: i64,
    sum_wait: f64,
    max_wait: Option<f64>,
    wait: Sketch,
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn lower(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn upper(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

async fn load_jobs(pool: &PgPool, n: i64) {
    // 2 % QUEUED, 1 % DLQ, the rest COMPLETED, submitted over the last 24 h.
    sqlx::query(
        "INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, attempt, \
                           retry_count, max_retries, request_hash, created_at, updated_at, dlq_at, error_message, \
                           error_stage) \
         SELECT gen_random_uuid(), 'bench-' || i, 'invoice.pdf', 'in/bench-' || i, 1000, (ARRAY[1, 5, 5, 10])[1 + i % 4], \
                CASE WHEN i % 100 = 0 THEN 'DLQ' WHEN i % 50 = 1 THEN 'QUEUED' ELSE 'COMPLETED' END, 1, 0, 3, \
                '\\x00'::bytea, at, at, CASE WHEN i % 100 = 0 THEN at END, \
                CASE WHEN i % 100 = 0 THEN 'blob_store_unavailable (retryable): timed out' END, \
                CASE WHEN i % 100 = 0 THEN 'upload' END \
         FROM (SELECT i, now() - interval '24 hours' + i * interval '86 ms' AS at FROM generate_series(1, $1) AS i) s",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

async fn load_rollups(pool: &PgPool, n: usize) {
    let now = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let minutes = 24 * 60;
    let per_minute = n / minutes;
    let mut rng = Lcg(42);
    let outcomes = ["completed", "retrying", "failed", "dlq"];
    for chunk in 0..(minutes / 60) {
        let mut stages: BTreeMap<(DateTime<Utc>, &str), StageAgg> = BTreeMap::new();
        let mut execs: BTreeMap<(DateTime<Utc>, i16, &str), ExecAgg> = BTreeMap::new();
        for m in chunk * 60..(chunk + 1) * 60 {
            let bucket = now - TimeDelta::minutes((minutes - m) as i64 - 1);
            let count = if m == minutes - 1 { n - per_minute * (minutes - 1) } else { per_minute };
            for _ in 0..count {
                let durations: Vec<f64> = TYPICAL_MS.iter().map(|t| t * (0.2 + 4.8 * rng.next().powi(3))).collect();
                let total: f64 = durations.iter().sum();
                let r = rng.next();
                let outcome = outcomes[if r < 0.95 {
                    0
                } else if r < 0.97 {
                    1
                } else if r < 0.99 {
                    2
                } else {
                    3
                }];
                let priority = [1i16, 5, 5, 10][(rng.next() * 4.0) as usize % 4];
                for (i, d) in durations.iter().enumerate() {
                    let s = stages.entry((bucket, STAGES[i])).or_default();
                    s.count += 1;
                    s.failures += i64::from(outcome != "completed" && i == 0);
                    s.sum_ms += d;
                    s.min_ms = lower(s.min_ms, *d);
                    s.max_ms = upper(s.max_ms, *d);
                    s.sum_share += d / total * 100.0;
                    s.sketch.record_ms(*d);
                }
                let e = execs.entry((bucket, priority, outcome)).or_default();
                let wait = 5.0 + 200.0 * rng.next().powi(4);
                e.count += 1;
                e.sum_total += total;
                e.min_total = lower(e.min_total, total);
                e.max_total = upper(e.max_total, total);
                e.total.record_ms(total);
                e.wait_count += 1;
                e.sum_wait += wait;
                e.max_wait = upper(e.max_wait, wait);
                e.wait.record_ms(wait);
            }
        }
        let v: Vec<_> = stages.iter().collect();
        sqlx::query(
            "INSERT INTO metric_stage_rollups (bucket, stage, count, failures, sum_ms, min_ms, max_ms, sum_share_pct, sketch) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int8[], $4::int8[], $5::float8[], $6::float8[], \
                                  $7::float8[], $8::float8[], $9::bytea[])",
        )
        .bind(v.iter().map(|((b, _), _)| *b).collect::<Vec<_>>())
        .bind(v.iter().map(|((_, s), _)| s.to_string()).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.count).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.failures).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.sum_ms).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.min_ms).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.max_ms).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.sum_share).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.sketch.encode()).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
        let v: Vec<_> = execs.iter().collect();
        sqlx::query(
            "INSERT INTO metric_execution_rollups (bucket, priority, outcome, count, sum_total_ms, min_total_ms, \
                                                   max_total_ms, total_sketch, wait_count, sum_wait_ms, max_wait_ms, wait_sketch) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::int2[], $3::text[], $4::int8[], $5::float8[], $6::float8[], \
                                  $7::float8[], $8::bytea[], $9::int8[], $10::float8[], $11::float8[], $12::bytea[])",
        )
        .bind(v.iter().map(|((b, _, _), _)| *b).collect::<Vec<_>>())
        .bind(v.iter().map(|((_, p, _), _)| *p).collect::<Vec<_>>())
        .bind(v.iter().map(|((_, _, o), _)| o.to_string()).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.count).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.sum_total).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.min_total).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.max_total).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.total.encode()).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.wait_count).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.sum_wait).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.max_wait).collect::<Vec<_>>())
        .bind(v.iter().map(|(_, a)| a.wait.encode()).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Logs in at the console's form; the session cookie.
async fn session_cookie(http: &reqwest::Client, base: &str, token: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let pre = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = form.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let logged_in = http
        .post(format!("{base}/login"))
        .header("cookie", &pre)
        .form(&[("csrf", csrf.as_str()), ("token", token), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), reqwest::StatusCode::SEE_OTHER);
    logged_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

async fn run() {
    let n: usize = std::env::var("BENCH_EXECUTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let db = test_support::TestDb::new().await;
    let pool = db.pool.clone();
    let t = Instant::now();
    load_jobs(&pool, n as i64).await;
    println!("{n} job rows in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    load_rollups(&pool, n).await;
    println!("rollups of {n} executions over 24 h in {:.1} s", t.elapsed().as_secs_f64());
    for table in ["jobs", "metric_stage_rollups", "metric_execution_rollups"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&pool).await.unwrap();
    }

    let broker = test_support::TestBroker::new();
    let config = dlq_admin::Config::parse_from([
        "dlq-admin",
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
        "--amqp-url",
        &broker.amqp_url,
        "--namespace",
        &broker.namespace,
        "--admin-tokens",
        "bench:read",
        "--sweep-interval-seconds",
        "0",
        "--skip-migrations",
    ]);
    let settings =
        OverviewSettings { sla: config.sla.clone(), alerts: config.alerts.clone(), topology: config.amqp.topology() };
    let warm = load_overview(&pool, &settings, 24).await.unwrap();
    assert_eq!(warm.report.total_executions, n as i64, "every execution is in the window");
    // Where the time goes: reading the rollup rows, merging their sketches.
    let (mut reads, mut merges) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let rows = job_store::rollups::load_window(&pool, 24 * 60).await.unwrap();
        reads.push(t.elapsed());
        let t = Instant::now();
        let _: metrics_core::report::WindowData = rows.into();
        merges.push(t.elapsed());
    }
    let mut in_process = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let o = load_overview(&pool, &settings, 24).await.unwrap();
        bytes = render_overview(&o).into_string().len();
        in_process.push(t.elapsed());
    }

    let app = dlq_admin::Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = session_cookie(&http, &base, "bench").await;
    let mut over_http = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        let r = http.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(body.contains("id=\"executions\""));
        if i > 0 {
            over_http.push(t.elapsed());
        }
    }
    shutdown.cancel();
    let _ = server.await;

    println!(
        "overview over {n} executions (24 h window, {} attempts counted, success {:.1} %):",
        warm.report.total_executions,
        warm.report.success_rate.unwrap_or(0.0)
    );
    println!(
        "  read + compute + render in-process: median {:.1} ms over {runs} runs ({bytes} bytes of HTML)",
        median(in_process).as_secs_f64() * 1000.0
    );
    println!(
        "  of which reading the 24 h rollup rows: median {:.1} ms; merging their sketches: median {:.1} ms",
        median(reads).as_secs_f64() * 1000.0,
        median(merges).as_secs_f64() * 1000.0
    );
    println!(
        "  GET / over HTTP with a session:     median {:.1} ms over {runs} runs",
        median(over_http).as_secs_f64() * 1000.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` and test listing run this without
        // `--bench`: neither should load a database.
        if !args.iter().any(|a| a == "--list") {
            println!("the overview benchmark runs only under `cargo bench -p dlq-admin --bench overview`");
        }
        return;
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run());
}
