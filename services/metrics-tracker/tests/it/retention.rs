//! Raw rows expire; rollups stay, and reports keep counting from them.

use chrono::{TimeDelta, Utc};
use clap::Parser;
use job_model::{AttemptOutcome, JobPriority};
use metrics_tracker::retention::{Swept, sweep};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, event_with};

#[tokio::test]
async fn the_sweep_deletes_old_raw_rows_and_keeps_rollups() {
    // The service's own sweep (at start, then every interval) keeps far more
    // than the test's, so only the test's sweeps below delete: on a loaded
    // machine the start-up sweep could otherwise run after the events landed
    // and leave the test's first sweep nothing to count.
    let app = TestApp::spawn_with(Options {
        args: ["--raw-retention-hours", "100000", "--rollup-retention-days", "100000"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    let now = Utc::now();
    let old = event_with(
        Uuid::now_v7(),
        1,
        JobPriority::Low,
        AttemptOutcome::Completed,
        &[10.0, 20.0],
        5.0,
        now - TimeDelta::days(10),
    );
    let recent = event_with(Uuid::now_v7(), 1, JobPriority::Low, AttemptOutcome::Completed, &[10.0, 20.0], 5.0, now);
    app.publish(&[old.clone(), recent.clone()]).await;
    app.consumed(2, 0, 0).await;

    // Raw rows older than 168 h go, with their stage timings; in small batches.
    let config = metrics_tracker::Config::parse_from(["t", "--retention-batch-size", "1"]);
    let swept = sweep(app.pool(), &config.retention).await.unwrap();
    assert_eq!(swept, Swept { executions: 1, stage_rollups: 0, execution_rollups: 0 });
    let stages: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_stage_timings WHERE job_id = $1")
        .bind(old.job_id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stages, 0);
    assert_eq!(app.get(&format!("/api/executions/{}", old.job_id)).await.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(app.json(&format!("/api/executions/{}", recent.job_id)).await["attempts"].as_array().unwrap().len(), 1);

    // The 30-day report still counts both, from the rollups.
    let report = app.json("/api/metrics/report?hours=720").await;
    assert_eq!(report["total_executions"], 2);
    assert_eq!(report["stage_breakdown"][0]["count"], 2);
    assert_eq!(app.json("/api/metrics/report?hours=24").await["total_executions"], 1);

    // Rollups older than ROLLUP_RETENTION_DAYS go too.
    let config = metrics_tracker::Config::parse_from(["t", "--rollup-retention-days", "7"]);
    let swept = sweep(app.pool(), &config.retention).await.unwrap();
    assert_eq!(swept, Swept { executions: 0, stage_rollups: 2, execution_rollups: 1 });
    assert_eq!(app.json("/api/metrics/report?hours=720").await["total_executions"], 1);
}
