//! A submission's message is published by the process that committed it,
//! straight from memory, with no poll of the outbox between.

use std::collections::HashSet;
use std::time::Duration;

use job_model::{JobEnvelope, JobPriority};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::eventually;

use crate::helpers::{Options, TestApp, valid_body};

#[tokio::test]
async fn a_submission_goes_out_at_once_although_the_relay_polls_only_hourly() {
    // After its first poll at connect, this relay polls again in an hour:
    // only a handover can publish these within the test.
    let args = vec!["--outbox-poll-interval-ms".to_owned(), "3600000".to_owned()];
    let app = TestApp::spawn_with(Options { args, ..Default::default() }).await;
    app.broker_connected().await;

    let mut ids = HashSet::new();
    for i in 0..5 {
        let response = app.submit(&valid_body(&format!("handed-{i}"))).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["job_id"].as_str().unwrap().to_owned());
    }
    app.outbox_drained().await;
    let queue = app.broker.topology.job_queue(JobPriority::Normal);
    let messages = app.broker.drain(&queue, Duration::from_millis(300)).await;
    let queued: HashSet<String> =
        messages.iter().map(|m| JobEnvelope::decode(&m.data).unwrap().job_id().to_string()).collect();
    assert_eq!((messages.len(), queued), (5, ids), "each job once");
    eventually(Duration::from_secs(10), "the handovers to be counted", || async {
        (app.metric("docflow_outbox_handed_over_total").await? == 5.0).then_some(())
    })
    .await;
}
