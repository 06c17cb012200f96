//! The 24-hour report from rollups against a scan of the raw rows.
//!
//!     cargo bench -p metrics-tracker --bench report
//!     BENCH_EXECUTIONS=200000 cargo bench -p metrics-tracker --bench report
//!
//! Loads BENCH_EXECUTIONS executions (default 1,000,000; eight stages each,
//! finishing evenly over the last 24 hours, in time order as live traffic
//! arrives) through the service's own write path (`rollup::record_batch`,
//! raw rows and rollups), into a fresh database on the local Postgres. Then
//! times the report (`report::report`, what GET /api/metrics/report runs)
//! and, as the baseline, the same figures computed by SQL over the raw rows
//! (counts, averages, percentile_disc, SLA counts, queue wait per priority),
//! and prints medians and the ratio.
//!
//! Not criterion, and not a test: one load takes minutes, and a plain main
//! prints what matters. Without `--bench` (as `cargo test --benches` runs
//! it) it exits at once.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use job_model::{AttemptOutcome, ExecutionEvent, JobPriority, StageTiming};
use metrics_tracker::config::STAGES;
use metrics_tracker::report;
use metrics_tracker::rollup::record_batch;
use sqlx::PgPool;
use uuid::Uuid;

const BATCH: usize = 1000;

/// splitmix64: deterministic, fast, good enough for synthetic latencies.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn log_between(&mut self, lo: f64, hi: f64) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }
}

fn stage_range(stage: &str) -> (f64, f64) {
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

fn event(rng: &mut Rng, finished_at: DateTime<Utc>) -> ExecutionEvent {
    let priority = JobPriority::ALL[(rng.next_u64() % 3) as usize];
    let outcome = match rng.unit() {
        r if r < 0.92 => AttemptOutcome::Completed,
        r if r < 0.96 => AttemptOutcome::Retrying,
        r if r < 0.98 => AttemptOutcome::Failed,
        _ => AttemptOutcome::Dlq,
    };
    let durations: Vec<f64> = STAGES.iter().map(|s| stage_range(s)).map(|(lo, hi)| rng.log_between(lo, hi)).collect();
    let total: f64 = durations.iter().sum::<f64>() + 2.0;
    let started_at = finished_at - TimeDelta::microseconds((total * 1000.0) as i64);
    let wait = rng.log_between(5.0, 30_000.0);
    let mut offset = 1.0;
    let stages = durations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let failed = outcome != AttemptOutcome::Completed && i == STAGES.len() - 1;
            let s = StageTiming {
                seq: i as i16 + 1,
                stage: STAGES[i].to_owned(),
                status: if failed { "failed" } else { "succeeded" }.to_owned(),
                started_at: started_at + TimeDelta::microseconds((offset * 1000.0) as i64),
                offset_ms: offset,
                duration_ms: *d,
                items_processed: 1,
                bytes_processed: 50_000,
                error: failed.then(|| "storage unavailable".to_owned()),
            };
            offset += d;
            s
        })
        .collect();
    let job_id = Uuid::now_v7();
    ExecutionEvent {
        schema_version: 1,
        job_id,
        attempt: 1,
        document_id: format!("doc-{job_id}"),
        priority,
        outcome,
        error_message: None,
        error_stage: None,
        worker_id: "bench".into(),
        submitted_at: started_at - TimeDelta::microseconds((wait * 1000.0) as i64),
        started_at,
        finished_at,
        queue_wait_ms: wait,
        total_duration_ms: total,
        stages,
        trace_id: None,
    }
}

/// Loads executions `from..to` of `n`, finishing evenly over [start, start + 24 h).
async fn load(pool: PgPool, seed: u64, from: usize, to: usize, n: usize, start: DateTime<Utc>) {
    let mut rng = Rng(seed);
    let step = 86_400_000_000.0 / n as f64;
    let mut i = from;
    while i < to {
        let end = (i + BATCH).min(to);
        let events: Vec<ExecutionEvent> =
            (i..end).map(|k| event(&mut rng, start + TimeDelta::microseconds((k as f64 * step) as i64))).collect();
        record_batch(&pool, &events).await.expect("loading a batch");
        i = end;
        if (i - from).is_multiple_of(100_000) {
            eprintln!("  loaded {} / {}", i - from, to - from);
        }
    }
}

/// The baseline: what the report shows, computed from the raw rows.
async fn raw_report(pool: &PgPool, since: DateTime<Utc>) -> (i64, f64) {
    let (total, _completed, _avg, p, _max): (i64, i64, Option<f64>, Vec<f64>, Option<f64>) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'completed'), avg(total_duration_ms), \
                percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY total_duration_ms), max(total_duration_ms) \
         FROM metric_executions WHERE finished_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await
    .unwrap();
    type StageRow = (String, i64, i64, Option<f64>, Vec<f64>, Option<f64>, Option<f64>, i64);
    let _stages: Vec<StageRow> = sqlx::query_as(
        "SELECT s.stage, count(*), count(*) FILTER (WHERE s.status = 'failed'), avg(s.duration_ms), \
                percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s.duration_ms), max(s.duration_ms), \
                sum(s.duration_ms), count(*) FILTER (WHERE s.duration_ms <= 100) \
         FROM metric_stage_timings s JOIN metric_executions e USING (job_id, attempt) \
         WHERE e.finished_at >= $1 GROUP BY s.stage",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .unwrap();
    let _waits: Vec<(i16, Vec<f64>)> = sqlx::query_as(
        "SELECT priority, percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY queue_wait_ms) \
         FROM metric_executions WHERE finished_at >= $1 AND attempt = 1 GROUP BY priority",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .unwrap();
    (total, p[1])
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn size(pool: &PgPool, table: &str) -> String {
    let bytes: i64 =
        sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)").bind(table).fetch_one(pool).await.unwrap();
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

async fn run() {
    let n: usize = std::env::var("BENCH_EXECUTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let db = test_support::TestDb::new().await;
    let pool = db.pool.clone();
    let sla = metrics_tracker::Config::parse_from(["bench"]).sla;

    // Finishing over the 24 h that end a couple of minutes from now, so
    // every execution is inside the report's window when it is timed.
    let start = Utc::now() - TimeDelta::hours(24) + TimeDelta::minutes(2);
    println!("loading {n} executions ({} stage rows) through rollup::record_batch, batches of {BATCH} ...", n * 8);
    let t = Instant::now();
    let half = n / 2;
    let a = tokio::spawn(load(pool.clone(), 1, 0, half, n, start));
    let b = tokio::spawn(load(pool.clone(), 2, half, n, n, start));
    a.await.unwrap();
    b.await.unwrap();
    let load_time = t.elapsed();
    println!("loaded in {:.1} s ({:.0} executions/s)", load_time.as_secs_f64(), n as f64 / load_time.as_secs_f64());
    for table in ["metric_executions", "metric_stage_rollups", "metric_execution_rollups"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&pool).await.unwrap();
    }
    let rollup_rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM metric_stage_rollups) + (SELECT count(*) FROM metric_execution_rollups)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "sizes: raw executions with their stage timings {}, stage rollups {}, execution rollups {} ({rollup_rows} rollup rows)",
        size(&pool, "metric_executions").await,
        size(&pool, "metric_stage_rollups").await,
        size(&pool, "metric_execution_rollups").await,
    );

    let since = report::window_start(&pool, 24 * 60).await.unwrap();
    // One warm-up each, then timed runs.
    let warm = report::report(&pool, 24, &sla).await.unwrap();
    let mut rollup_times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = report::report(&pool, 24, &sla).await.unwrap();
        rollup_times.push(t.elapsed());
        assert_eq!(r.total_executions, n as i64);
    }
    let raw_runs = runs.min(5);
    let (raw_total, raw_p95) = raw_report(&pool, since).await;
    let mut raw_times = Vec::new();
    for _ in 0..raw_runs {
        let t = Instant::now();
        raw_report(&pool, since).await;
        raw_times.push(t.elapsed());
    }
    let (rollup, raw) = (median(rollup_times), median(raw_times));
    println!("executions in window: report {} / raw {raw_total}", warm.total_executions);
    println!(
        "p95 total duration: report {:.3} ms / raw percentile_disc {raw_p95:.3} ms (relative difference {:+.4} %)",
        warm.p95_total_duration_ms.unwrap(),
        (warm.p95_total_duration_ms.unwrap() / raw_p95 - 1.0) * 100.0
    );
    println!("24-hour report from rollups: median {:.1} ms over {runs} runs", rollup.as_secs_f64() * 1000.0);
    println!("same figures from raw rows:  median {:.1} ms over {raw_runs} runs", raw.as_secs_f64() * 1000.0);
    println!("ratio raw / rollups: {:.1}x", raw.as_secs_f64() / rollup.as_secs_f64());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs this without `--bench`, and test
        // runners list tests with `--list`: neither should load a database.
        if !args.iter().any(|a| a == "--list") {
            println!("the report benchmark runs only under `cargo bench -p metrics-tracker --bench report`");
        }
        return;
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run());
}
