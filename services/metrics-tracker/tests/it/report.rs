//! The report against the raw rows: counts exact, percentiles within the
//! sketch's stated error (never below the exact nearest-rank value, at most
//! 1/128 above).

use std::collections::BTreeMap;

use metrics_tracker::sketch::MAX_RELATIVE_ERROR;
use serde_json::Value;

use crate::helpers::{STAGES, TestApp, mixed_events};

/// Nearest-rank percentile, as Postgres's percentile_disc.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[track_caller]
fn assert_percentile(what: &str, got: &Value, sorted: &[f64], q: f64) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: no value"));
    let truth = nearest_rank(sorted, q);
    assert!(
        got >= truth - 1e-6 && got <= truth * (1.0 + MAX_RELATIVE_ERROR) + 1e-6,
        "{what}: p{} = {got}, exact {truth}",
        q * 100.0
    );
}

#[track_caller]
fn assert_close(what: &str, got: &Value, want: f64) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: no value"));
    assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{what}: {got} != {want}");
}

async fn sorted_column(app: &TestApp, sql: &'static str, bind: Option<&str>) -> Vec<f64> {
    let mut q = sqlx::query_scalar::<_, f64>(sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let mut values = q.fetch_all(app.pool()).await.unwrap();
    values.sort_by(f64::total_cmp);
    values
}

#[tokio::test]
async fn the_report_matches_the_raw_rows() {
    let app = TestApp::spawn().await;
    let events = mixed_events(400, 42);
    app.publish(&events).await;
    app.consumed(events.len() as u64, 0, 0).await;

    let report = app.json("/api/metrics/report?hours=24").await;
    let stages = app.json("/api/metrics/stages?hours=24").await;

    // Counts: exact, against the events sent and the raw rows.
    let raw_outcomes: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT outcome, count(*) FROM metric_executions GROUP BY outcome")
            .fetch_all(app.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
    let sent = |o: &str| events.iter().filter(|e| e.outcome.as_str() == o).count() as i64;
    for outcome in ["completed", "failed", "retrying", "dlq"] {
        assert_eq!(raw_outcomes.get(outcome).copied().unwrap_or(0), sent(outcome), "{outcome}");
    }
    assert_eq!(report["period_hours"], 24);
    assert_eq!(report["total_executions"], events.len() as i64);
    assert_eq!(report["successful_executions"], sent("completed"));
    assert_eq!(report["failed_executions"], sent("failed"));
    assert_eq!(report["retrying_executions"], sent("retrying"));
    assert_eq!(report["dlq_executions"], sent("dlq"));
    let finished = sent("completed") + sent("failed") + sent("dlq");
    assert_close("success_rate", &report["success_rate"], sent("completed") as f64 / finished as f64 * 100.0);
    assert_close("throughput", &report["throughput_documents_per_hour"], finished as f64 / 24.0);

    // Whole-attempt durations.
    let totals = sorted_column(&app, "SELECT total_duration_ms FROM metric_executions", None).await;
    let sum_totals: f64 = totals.iter().sum();
    assert_close("avg_total", &report["avg_total_duration_ms"], sum_totals / totals.len() as f64);
    assert_percentile("total", &report["p95_total_duration_ms"], &totals, 0.95);
    assert_percentile("total", &report["p99_total_duration_ms"], &totals, 0.99);
    assert_percentile("total", &report["p50_total_duration_ms"], &totals, 0.50);
    assert_close("max_total", &report["max_total_duration_ms"], *totals.last().unwrap());

    // Every stage, in the report and in /api/metrics/stages.
    let breakdown = report["stage_breakdown"].as_array().unwrap();
    let listed: Vec<&str> = breakdown.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(listed, STAGES, "pipeline order");
    for (i, stage) in STAGES.iter().enumerate() {
        let durations =
            sorted_column(&app, "SELECT duration_ms FROM metric_stage_timings WHERE stage = $1", Some(stage)).await;
        let failures: i64 =
            sqlx::query_scalar("SELECT count(*) FROM metric_stage_timings WHERE stage = $1 AND status = 'failed'")
                .bind(stage)
                .fetch_one(app.pool())
                .await
                .unwrap();
        let sum: f64 = durations.iter().sum();
        let b = &breakdown[i];
        assert_eq!(b["count"], durations.len() as i64, "{stage}");
        assert_eq!(b["failures"], failures, "{stage}");
        assert_close(stage, &b["avg_ms"], sum / durations.len() as f64);
        assert_percentile(stage, &b["p50_ms"], &durations, 0.50);
        assert_percentile(stage, &b["p95_ms"], &durations, 0.95);
        assert_percentile(stage, &b["p99_ms"], &durations, 0.99);
        assert_close(stage, &b["max_ms"], *durations.last().unwrap());
        assert_close(stage, &b["share_of_total_time_pct"], sum / sum_totals * 100.0);

        let s = &stages["stages"][i];
        assert_eq!(s["stage"], *stage);
        assert_eq!(s["count"], durations.len() as i64);
        assert_close(stage, &s["min_ms"], durations[0]);
        assert_close(stage, &s["max_ms"], *durations.last().unwrap());
        assert_close(stage, &s["failure_rate"], failures as f64 / durations.len() as f64 * 100.0);
        assert_percentile(stage, &s["p95_ms"], &durations, 0.95);
        assert_percentile(stage, &s["p99_ms"], &durations, 0.99);

        // SLA compliance: values up to the target count, and (the sketch's
        // resolution) values at most 1/128 above it may.
        let sla = report["sla"]["stages"].as_array().unwrap().iter().find(|s| s["stage"] == *stage).unwrap();
        let target = sla["target_ms"].as_f64().unwrap();
        let within =
            |limit: f64| durations.iter().filter(|d| **d <= limit).count() as f64 / durations.len() as f64 * 100.0;
        let got = sla["compliance_pct"].as_f64().unwrap();
        assert!(
            got >= within(target) - 1e-9 && got <= within(target * (1.0 + MAX_RELATIVE_ERROR)) + 1e-9,
            "{stage}: compliance {got}, exact {}",
            within(target)
        );
    }
    let total_within = totals.iter().filter(|t| **t <= 1500.0).count() as f64 / totals.len() as f64 * 100.0;
    let got = report["sla"]["total_compliance_pct"].as_f64().unwrap();
    let total_within_tolerance = totals.iter().filter(|t| **t <= 1500.0 * (1.0 + MAX_RELATIVE_ERROR)).count() as f64
        / totals.len() as f64
        * 100.0;
    assert!(
        got >= total_within - 1e-9 && got <= total_within_tolerance + 1e-9,
        "total compliance {got} vs {total_within}"
    );

    // Queue wait per priority: first attempts only.
    for (i, priority) in ["HIGH", "NORMAL", "LOW"].into_iter().enumerate() {
        let value: i16 = [1, 5, 10][i];
        let mut waits: Vec<f64> =
            sqlx::query_scalar("SELECT queue_wait_ms FROM metric_executions WHERE attempt = 1 AND priority = $1")
                .bind(value)
                .fetch_all(app.pool())
                .await
                .unwrap();
        waits.sort_by(f64::total_cmp);
        let w = &report["queue_wait"][i];
        assert_eq!(w["priority"], priority);
        assert_eq!(w["executions"], waits.len() as i64);
        assert_percentile(priority, &w["p50_ms"], &waits, 0.50);
        assert_percentile(priority, &w["p95_ms"], &waits, 0.95);
        assert_eq!(w["queued_now"], 0);
        assert!(w["oldest_waiting_seconds"].is_null());
    }
    assert_eq!(report["sketch"]["kind"], "hdr_histogram");
}

#[tokio::test]
async fn bottlenecks_name_the_dominant_stages_with_a_recommendation() {
    let app = TestApp::spawn().await;
    let events = mixed_events(120, 7);
    app.publish(&events).await;
    app.consumed(events.len() as u64, 0, 0).await;

    let body = app.json("/api/metrics/bottlenecks?threshold_percentile=0.85").await;
    assert_eq!(body["threshold_percentile"], 0.85);
    let bottlenecks = body["bottlenecks"].as_array().unwrap();
    assert!(!bottlenecks.is_empty() && bottlenecks.len() <= 2, "{body}");
    let top = &bottlenecks[0];
    assert_eq!(top["stage"], "extraction", "{body}");
    assert!(top["recommendation"].as_str().unwrap().starts_with("PDF text extraction dominates"));
    assert!(top["p95_ms"].as_f64().unwrap() > 0.0);

    // The share is the mean over executions of stage / total, exactly.
    let expected: f64 = sqlx::query_scalar(
        "SELECT avg(s.duration_ms / e.total_duration_ms * 100) FROM metric_stage_timings s \
         JOIN metric_executions e USING (job_id, attempt) WHERE s.stage = 'extraction'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!((top["avg_percentage_of_total"].as_f64().unwrap() - expected).abs() < 1e-6);
    assert!(top["avg_percentage_of_total"].as_f64().unwrap() >= body["threshold_percentage"].as_f64().unwrap());

    // 1 keeps only the most dominant stage; out-of-range values are refused.
    let only = app.json("/api/metrics/bottlenecks?threshold_percentile=1").await;
    assert_eq!(only["bottlenecks"].as_array().unwrap().len(), 1);
    let response = app.get("/api/metrics/bottlenecks?threshold_percentile=1.5").await;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let response = app.get("/api/metrics/report?hours=0").await;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let response = app.get("/api/metrics/stages?hours=abc").await;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
}
