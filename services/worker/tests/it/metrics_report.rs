//! A real run of ingest-api, worker and metrics-tracker: the report agrees
//! with the jobs table exactly, and its percentiles with the raw stage rows
//! within the sketch's stated error.

use std::time::Duration;

use serde_json::Value;
use test_support::eventually;

use crate::platform::{Platform, Setup, text_invoice};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name)).unwrap()
}

/// The HDR sketch's bound (metrics-tracker README): never below the exact
/// nearest-rank value, at most 1/128 above it (plus a nanosecond).
fn within_sketch_error(reported: f64, exact: f64) -> bool {
    reported >= exact - 1e-6 && reported <= exact * (1.0 + 1.0 / 128.0) + 1e-6
}

#[tokio::test]
async fn the_report_matches_the_jobs_table_and_the_raw_stage_rows() {
    let mut platform = Platform::start(Setup::default()).await;
    platform.start_metrics_tracker().await;
    let mut jobs = Vec::new();
    for name in
        ["invoice_en.pdf", "rechnung_de.pdf", "invoice_en.txt", "invoice_de.txt", "receipt_fr.txt", "invoice_nl.xml"]
    {
        jobs.push(platform.submit_document(&format!("sample-{name}"), name, &sample(name), "NORMAL").await);
    }
    for name in ["truncated.pdf", "encrypted.pdf", "archive.zip"] {
        jobs.push(platform.submit_document(&format!("bad-{name}"), name, &sample(name), "LOW").await);
    }
    for i in 0..30 {
        jobs.push(
            platform
                .submit_document(&format!("bulk-{i}"), "invoice.txt", &text_invoice(&format!("B{i}")), "HIGH")
                .await,
        );
    }
    for job in &jobs {
        platform.wait_final(job, Duration::from_secs(120)).await;
    }
    let attempts = platform.count("SELECT count(*) FROM job_events WHERE to_status = 'PROCESSING'").await;
    let completed = platform.count("SELECT count(*) FROM jobs WHERE status = 'COMPLETED'").await;
    let failed = platform.count("SELECT count(*) FROM jobs WHERE status = 'FAILED'").await;
    assert_eq!((completed, failed), (36, 3), "the samples end as documented");

    let port = platform.metrics_tracker.as_ref().unwrap().port;
    let http = &platform.http;
    let report: Value = eventually(Duration::from_secs(60), "metrics-tracker to record every attempt", || async {
        let report: Value = http
            .get(format!("http://127.0.0.1:{port}/api/metrics/report?hours=1"))
            .bearer_auth("e2e-admin")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (report["total_executions"] == attempts).then_some(report)
    })
    .await;
    assert_eq!(report["successful_executions"], completed);
    assert_eq!(report["failed_executions"], failed);
    assert_eq!(report["dlq_executions"], 0);

    for stage in report["stage_breakdown"].as_array().unwrap() {
        let name = stage["stage"].as_str().unwrap().to_owned();
        let (count, p50, p95, p99, max): (i64, f64, f64, f64, f64) = sqlx::query_as(
            "SELECT count(*), \
                    percentile_disc(0.50) WITHIN GROUP (ORDER BY duration_ms), \
                    percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms), \
                    percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms), \
                    max(duration_ms) \
             FROM job_stages WHERE stage = $1",
        )
        .bind(&name)
        .fetch_one(&platform.db.pool)
        .await
        .unwrap();
        assert_eq!(stage["count"], count, "{name}: one stage row per timed stage");
        for (label, exact) in [("p50_ms", p50), ("p95_ms", p95), ("p99_ms", p99)] {
            let reported = stage[label].as_f64().unwrap();
            assert!(within_sketch_error(reported, exact), "{name} {label}: reported {reported}, exact {exact}");
        }
        assert!((stage["max_ms"].as_f64().unwrap() - max).abs() < 1e-3, "{name}: max is exact");
    }
}
