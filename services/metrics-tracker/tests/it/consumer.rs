//! The consumer: malformed events are acked and counted, and a lost broker
//! connection is re-established by itself.

use std::time::Duration;

use crate::helpers::{Options, TestApp, WAIT, completed_with_total, consumer_connected, mixed_events};
use test_support::eventually;

#[tokio::test]
async fn malformed_events_are_acked_and_counted_without_stopping_the_consumer() {
    let app = TestApp::spawn().await;
    let valid = completed_with_total(100.0);
    let mut wrong_version = serde_json::to_value(&valid).unwrap();
    wrong_version["schema_version"] = 2.into();
    let mut negative = serde_json::to_value(completed_with_total(100.0)).unwrap();
    negative["stages"][0]["duration_ms"] = (-5.0).into();
    let mut missing = serde_json::to_value(completed_with_total(100.0)).unwrap();
    missing.as_object_mut().unwrap().remove("job_id");

    app.publish_raw("execution.completed", b"\xff not json").await;
    app.publish_raw("execution.completed", &serde_json::to_vec(&wrong_version).unwrap()).await;
    app.publish_raw("execution.completed", &serde_json::to_vec(&negative).unwrap()).await;
    app.publish_raw("execution.failed", &serde_json::to_vec(&missing).unwrap()).await;
    app.publish(std::slice::from_ref(&valid)).await;

    app.consumed(1, 0, 4).await;
    let queue = app.broker.topology.metrics_events_queue();
    eventually(WAIT, "the events queue to be empty", || async {
        (app.broker.ready_count(&queue).await == 0).then_some(())
    })
    .await;
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM metric_executions").fetch_one(app.pool()).await.unwrap();
    assert_eq!(recorded, 1);
    let report = app.json("/api/metrics/report").await;
    assert_eq!(report["total_executions"], 1);
}

#[tokio::test]
async fn the_consumer_reconnects_after_losing_the_broker() {
    let app = TestApp::spawn_with(Options { proxy_broker: true, ..Default::default() }).await;
    consumer_connected(&app, true).await;
    let first = mixed_events(10, 11);
    app.publish(&first).await;
    app.consumed(10, 0, 0).await;

    let proxy = app.amqp_proxy.as_ref().unwrap();
    proxy.cut();
    consumer_connected(&app, false).await;
    // Published while the consumer is away: they wait in the queue.
    let second = mixed_events(10, 12);
    app.publish(&second).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();

    consumer_connected(&app, true).await;
    app.consumed(20, 0, 0).await;
    let report = app.json("/api/metrics/report").await;
    assert_eq!(report["total_executions"], 20);
}
