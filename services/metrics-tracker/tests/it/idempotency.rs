//! Redelivered events change nothing.

use serde_json::Value;

use crate::helpers::{TestApp, mixed_events};

/// Every rollup row, sketches included, in a stable order.
async fn rollups(
    app: &TestApp,
) -> (Vec<(String, i64, i64, f64, Option<Vec<u8>>)>, Vec<(i16, String, i64, i64, f64, Option<Vec<u8>>)>) {
    let stages = sqlx::query_as(
        "SELECT bucket::text || stage, count, failures, sum_ms, sketch FROM metric_stage_rollups ORDER BY bucket, stage",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let executions = sqlx::query_as(
        "SELECT priority, bucket::text || outcome, count, wait_count, sum_total_ms, total_sketch \
         FROM metric_execution_rollups ORDER BY bucket, priority, outcome",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    (stages, executions)
}

fn without_clock(mut report: Value) -> Value {
    let o = report.as_object_mut().unwrap();
    o.remove("generated_at");
    o.remove("window_start");
    report
}

#[tokio::test]
async fn redelivered_events_are_not_counted_twice() {
    let app = TestApp::spawn().await;
    let events = mixed_events(60, 3);

    // Each event twice in a row: most pairs land in the same batch.
    let doubled: Vec<_> = events.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
    app.publish(&doubled).await;
    app.consumed(60, 60, 0).await;
    let report = without_clock(app.json("/api/metrics/report?hours=24").await);
    let rows = rollups(&app).await;
    assert_eq!(report["total_executions"], 60);
    let raw: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_executions").fetch_one(app.pool()).await.unwrap();
    assert_eq!(raw, 60);

    // The whole set again, in later batches.
    app.publish(&events).await;
    app.consumed(60, 120, 0).await;
    assert_eq!(without_clock(app.json("/api/metrics/report?hours=24").await), report);
    assert_eq!(rollups(&app).await, rows, "rollups changed on redelivery");
    let raw: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_executions").fetch_one(app.pool()).await.unwrap();
    assert_eq!(raw, 60);

    // The Prometheus counters counted each attempt once too.
    let body = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let jobs_total: f64 = body
        .lines()
        .filter(|l| l.starts_with("docflow_job_attempts_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(jobs_total, 60.0);
}
