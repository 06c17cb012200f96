use std::collections::HashSet;
use std::time::Duration;

use job_model::{JobEnvelope, JobPriority};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::eventually;

use crate::helpers::{Options, TestApp, assert_error, valid_body};

#[tokio::test]
async fn submissions_during_a_broker_outage_are_queued_exactly_once_when_it_returns() {
    let app = TestApp::spawn_with(Options { proxy_broker: true, ..Default::default() }).await;
    app.broker_connected().await;
    let proxy = app.amqp_proxy.as_ref().unwrap();
    proxy.cut();

    let mut ids = HashSet::new();
    for i in 0..25 {
        let response = app.submit(&valid_body(&format!("outage-{i}"))).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "a 202 even with the broker away");
        let body: Value = response.json().await.unwrap();
        ids.insert(body["job_id"].as_str().unwrap().to_owned());
    }
    let queue = app.broker.topology.job_queue(JobPriority::Normal);
    // The relay cannot have published through a cut connection: all 25 wait in the outbox.
    assert_eq!(app.outbox_count().await, 25);
    // Their handover failed, so their claims are released for any relay's
    // poll instead of being left to run out.
    eventually(Duration::from_secs(30), "the handed-over rows to be released", || async {
        let claimed: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE not_before IS NOT NULL")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        (claimed == 0).then_some(())
    })
    .await;
    let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");

    proxy.restore();
    app.outbox_drained().await;
    let messages = app.broker.drain(&queue, Duration::from_millis(500)).await;
    let queued: Vec<String> =
        messages.iter().map(|m| JobEnvelope::decode(&m.data).unwrap().job_id().to_string()).collect();
    assert_eq!(queued.len(), 25, "every job once, none twice");
    assert_eq!(queued.iter().cloned().collect::<HashSet<_>>(), ids);
}

#[tokio::test]
async fn submissions_during_a_database_outage_get_503_and_nothing_is_queued() {
    let app = TestApp::spawn_with(Options { proxy_postgres: true, ..Default::default() }).await;
    app.broker_connected().await;
    let proxy = app.pg_proxy.as_ref().unwrap();
    proxy.cut();

    for i in 0..3 {
        let response = app.submit(&valid_body(&format!("pg-down-{i}"))).await;
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
        assert!(retry_after.is_some_and(|v| v.parse::<u64>().unwrap() >= 1), "503 carries Retry-After");
    }
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    // Read the real database directly (not through the proxy): nothing was written.
    assert_eq!(app.job_count().await, 0);
    assert_eq!(app.outbox_count().await, 0);
    for p in JobPriority::ALL {
        assert_eq!(app.broker.ready_count(&app.broker.topology.job_queue(p)).await, 0);
    }
    // And the service recovers by itself.
    test_support::eventually(Duration::from_secs(30), "submissions to succeed again", || async {
        (app.submit(&valid_body("pg-back")).await.status() == StatusCode::ACCEPTED).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_row_that_breaks_an_invariant_is_a_500_internal_not_a_503() {
    let app = TestApp::spawn().await;
    let response = app.submit(&valid_body("broken-row")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job_id = response.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned();
    // The schema allows any JSON object as tags; the model holds string
    // values only. A row written behind the API's back breaks that.
    sqlx::query("UPDATE jobs SET tags = '{\"customer\": 42}' WHERE job_id = $1::uuid")
        .bind(&job_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = app.get(&format!("/api/job/{job_id}/status")).await;
    assert!(response.headers().get("retry-after").is_none(), "not an outage: nothing to wait for");
    let body = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert!(!body.to_string().contains("42"), "a 500 shows no internals: {body}");
}
