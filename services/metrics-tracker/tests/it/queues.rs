//! `GET /api/queues`: Postgres counts per status, broker counters per queue.

use job_model::JobPriority;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;

use crate::helpers::TestApp;

#[tokio::test]
async fn queue_stats_combine_postgres_and_the_broker() {
    let app = TestApp::spawn().await;
    app.insert_jobs(3, "QUEUED", JobPriority::High).await;
    app.insert_jobs(2, "PROCESSING", JobPriority::High).await;
    app.insert_jobs(4, "COMPLETED", JobPriority::Normal).await;
    app.insert_jobs(1, "FAILED", JobPriority::Normal).await;
    app.insert_jobs(2, "RETRYING", JobPriority::Low).await;
    app.insert_jobs(5, "DLQ", JobPriority::Low).await;
    sqlx::query("UPDATE jobs SET updated_at = now() - interval '90 seconds' WHERE status = 'QUEUED'")
        .execute(app.pool())
        .await
        .unwrap();

    // Two messages waiting on jobs.high, published by the test (no worker runs).
    let connection = app.broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    for _ in 0..2 {
        channel
            .basic_publish(
                app.broker.topology.jobs_exchange().into(),
                "high".into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let body = app.json("/api/queues").await;
    let queues = body["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 4);
    let t = &app.broker.topology;
    let high = &queues[0];
    assert_eq!(high["queue"], t.job_queue(JobPriority::High));
    assert_eq!(high["priority"], "HIGH");
    assert_eq!((high["queued"].as_i64(), high["processing"].as_i64()), (Some(3), Some(2)));
    test_support::eventually(crate::helpers::WAIT, "2 ready messages", || async {
        let body = app.json("/api/queues").await;
        (body["queues"][0]["messages_ready"] == 2).then_some(())
    })
    .await;
    assert_eq!(high["consumer_count"], 0);
    let age = high["oldest_message_age_seconds"].as_f64().unwrap();
    assert!((90.0..3600.0).contains(&age), "{age}");

    let normal = &queues[1];
    assert_eq!(normal["queue"], t.job_queue(JobPriority::Normal));
    assert_eq!(
        (normal["completed"].as_i64(), normal["failed"].as_i64(), normal["queued"].as_i64()),
        (Some(4), Some(1), Some(0))
    );
    assert!(normal["oldest_message_age_seconds"].is_null());
    assert_eq!(normal["messages_ready"], 0);

    let low = &queues[2];
    assert_eq!((low["retrying"].as_i64(), low["dlq"].as_i64()), (Some(2), Some(5)));

    let dlq = &queues[3];
    assert_eq!(dlq["queue"], t.dlq_queue());
    assert!(dlq["priority"].is_null());
    assert_eq!(dlq["dlq"], 5);
    assert_eq!(dlq["messages_ready"], 0);

    // Oldest waiting job in the report, per priority.
    let report = app.json("/api/metrics/report").await;
    assert_eq!(report["queue_wait"][0]["queued_now"], 3);
    assert!(report["queue_wait"][0]["oldest_waiting_seconds"].as_f64().unwrap() >= 90.0);
    assert!(app.metric("docflow_queue_oldest_job_age_seconds{priority=\"high\"}").await >= 90.0);
}
