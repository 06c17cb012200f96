//! Each alert fires when its threshold is crossed and clears when it is not.

use job_model::JobPriority;
use serde_json::Value;

use crate::helpers::{TestApp, completed_with_total, failed_event};

async fn active(app: &TestApp) -> Vec<Value> {
    app.json("/api/alerts").await["alerts"].as_array().unwrap().clone()
}

fn named<'a>(alerts: &'a [Value], name: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| a["name"] == name)
}

#[tokio::test]
async fn queue_depth_and_dlq_alerts_follow_the_jobs_table() {
    let app = TestApp::spawn().await;
    assert!(active(&app).await.is_empty());

    // At the threshold: nothing. One above: a WARNING on that queue only.
    app.insert_jobs(1000, "QUEUED", JobPriority::High).await;
    app.insert_jobs(100, "DLQ", JobPriority::Low).await;
    app.insert_jobs(5, "QUEUED", JobPriority::Low).await;
    assert!(active(&app).await.is_empty(), "thresholds are strict");

    app.insert_jobs(1, "QUEUED", JobPriority::High).await;
    app.insert_jobs(1, "DLQ", JobPriority::Normal).await;
    let alerts = active(&app).await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let depth = named(&alerts, "queue_depth_high").expect("queue depth alert");
    assert_eq!(depth["severity"], "WARNING");
    assert_eq!(depth["value"], 1001.0);
    assert_eq!(depth["threshold"], 1000.0);
    assert_eq!(depth["queue"], app.broker.topology.job_queue(JobPriority::High));
    let dlq = named(&alerts, "dlq_size_high").expect("dlq alert");
    assert_eq!(dlq["severity"], "WARNING");
    assert_eq!(dlq["value"], 101.0);

    // The queue's number in /metrics (the DLQ's size is dlq-admin's to export).
    assert_eq!(app.metric("docflow_queue_jobs{priority=\"high\",state=\"waiting\"}").await, 1001.0);
    assert_eq!(app.metric("docflow_queue_jobs{priority=\"low\",state=\"waiting\"}").await, 5.0);

    // Back under the thresholds: both clear.
    sqlx::query("UPDATE jobs SET status = 'PROCESSING' WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'QUEUED' AND priority = 1 LIMIT 1)")
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE jobs SET status = 'DELETED' WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'DLQ' LIMIT 1)",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert!(active(&app).await.is_empty());
}

#[tokio::test]
async fn duration_and_success_rate_alerts_follow_recent_executions() {
    let app = TestApp::spawn().await;

    // 10 slow attempts: average 2000 ms > 1500 ms: CRITICAL.
    app.publish(&(0..10).map(|_| completed_with_total(2000.0)).collect::<Vec<_>>()).await;
    app.consumed(10, 0, 0).await;
    let alerts = active(&app).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let slow = named(&alerts, "avg_duration_high").unwrap();
    assert_eq!(slow["severity"], "CRITICAL");
    assert_eq!(slow["value"], 2000.0);

    // 30 fast ones: (10·2000 + 30·500) / 40 = 875 ms: clears.
    app.publish(&(0..30).map(|_| completed_with_total(500.0)).collect::<Vec<_>>()).await;
    app.consumed(40, 0, 0).await;
    assert!(active(&app).await.is_empty());

    // 3 failures: 40 / 43 = 93 % < 95 %: WARNING.
    app.publish(&(0..3).map(|_| failed_event()).collect::<Vec<_>>()).await;
    app.consumed(43, 0, 0).await;
    let alerts = active(&app).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let low = named(&alerts, "success_rate_low").unwrap();
    assert_eq!(low["severity"], "WARNING");
    assert!((low["value"].as_f64().unwrap() - 40.0 / 43.0 * 100.0).abs() < 1e-9);
    assert_eq!(low["threshold"], 95.0);

    // 40 more successes: 80 / 83 = 96.4 %: clears.
    app.publish(&(0..40).map(|_| completed_with_total(500.0)).collect::<Vec<_>>()).await;
    app.consumed(83, 0, 0).await;
    assert!(active(&app).await.is_empty());
}
