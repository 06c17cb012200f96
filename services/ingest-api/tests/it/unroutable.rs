//! Outbox rows the broker will not route (issue #10, item 4): retried on
//! their own with backoff, re-declared where the relay can, parked on the
//! dead-letter exchange when nothing helps; the rest of the outbox flows.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use job_model::message::headers;
use job_model::{JobEnvelope, JobPriority, OutboxMessage};
use lapin::types::AMQPValue;
use reqwest::StatusCode;
use serde_json::Value;
use test_support::eventually;

use crate::helpers::{Options, TestApp, valid_body};

async fn enqueue(app: &TestApp, message: OutboxMessage) {
    let mut tx = app.db.pool.begin().await.unwrap();
    job_store::outbox::enqueue(&mut tx, &message).await.unwrap();
    tx.commit().await.unwrap();
}

fn header(delivery: &lapin::message::Delivery, name: &str) -> Option<String> {
    let table = delivery.properties.headers().as_ref()?;
    match table.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn an_unroutable_message_is_retried_alone_then_parked_on_the_dead_letter_exchange() {
    let app = TestApp::spawn_with(Options {
        args: vec!["--outbox-unroutable-attempts".into(), "2".into()],
        ..Default::default()
    })
    .await;
    app.broker_connected().await;
    let topology = &app.broker.topology;

    // Bound to nothing: the jobs exchange routes by priority, and "nowhere" is none.
    let stray_job = uuid::Uuid::now_v7().to_string();
    let payload = br#"{"schema_version":1,"type":"process_document"}"#.to_vec();
    let stray = OutboxMessage::new(
        topology.jobs_exchange(),
        "nowhere".into(),
        payload.clone(),
        BTreeMap::from([(headers::JOB_ID.to_owned(), stray_job.clone())]),
    );
    enqueue(&app, stray).await;

    // Submissions behind it go out while it waits out its backoff.
    let mut ids = HashSet::new();
    for i in 0..5 {
        let response = app.submit(&valid_body(&format!("behind-{i}"))).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        ids.insert(response.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned());
    }
    let queue = topology.job_queue(JobPriority::Normal);
    eventually(Duration::from_secs(20), "the five jobs to be queued", || async {
        (app.broker.ready_count(&queue).await == 5).then_some(())
    })
    .await;

    // Held back with its error, not retried every cycle.
    let (failures, error): (i32, String) =
        eventually(Duration::from_secs(20), "the refusal to be recorded", || async {
            sqlx::query_as::<_, (i32, Option<String>, bool)>(
                "SELECT failures, last_error, coalesce(not_before > now(), false) FROM outbox WHERE routing_key = 'nowhere'",
            )
            .fetch_optional(&app.db.pool)
            .await
            .unwrap()
            .and_then(|(failures, error, held)| (failures >= 1 && held).then(|| (failures, error.unwrap_or_default())))
        })
        .await;
    assert!(failures <= 2, "{failures}");
    assert!(error.contains("unroutable"), "{error}");

    app.outbox_drained().await;
    let parked = app.broker.drain(&topology.dlq_queue(), Duration::from_millis(500)).await;
    assert_eq!(parked.len(), 1, "parked once");
    let letter = &parked[0];
    assert_eq!(letter.data, payload);
    assert_eq!(header(letter, headers::DLQ_REASON).as_deref(), Some("unroutable"));
    assert_eq!(header(letter, headers::JOB_ID), Some(stray_job));
    assert_eq!(header(letter, "x-original-exchange"), Some(topology.jobs_exchange()));
    assert_eq!(header(letter, "x-original-routing-key").as_deref(), Some("nowhere"));
    assert!(header(letter, headers::ERROR).is_some_and(|e| e.contains("unroutable")));

    let queued = app.broker.drain(&queue, Duration::from_millis(300)).await;
    let queued: Vec<String> =
        queued.iter().map(|m| JobEnvelope::decode(&m.data).unwrap().job_id().to_string()).collect();
    assert_eq!(queued.len(), 5, "each job once: the stray row failed alone, its batch was not published again");
    assert_eq!(queued.into_iter().collect::<HashSet<_>>(), ids);
}

#[tokio::test]
async fn a_retry_tier_the_relay_never_declared_is_declared_from_its_name_before_publishing() {
    // ingest-api knows no retry policy, yet its relay publishes the
    // worker's retry rows too (one outbox for all): it re-declares the tier
    // from the exchange's name.
    let app = TestApp::spawn().await;
    app.broker_connected().await;
    let topology = app.broker.topology.clone();
    let delay = Duration::from_millis(200);
    let retry = OutboxMessage::new(
        topology.retry_exchange(delay),
        JobPriority::Normal.routing_key().into(),
        b"retry me".to_vec(),
        BTreeMap::new(),
    );
    enqueue(&app, retry).await;

    let queue = topology.job_queue(JobPriority::Normal);
    eventually(Duration::from_secs(20), "the retry to come back to its priority queue", || async {
        (app.broker.ready_count(&queue).await == 1).then_some(())
    })
    .await;
    app.outbox_drained().await;
    let delivered = app.broker.drain(&queue, Duration::from_millis(300)).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].data, b"retry me");

    let conn = app.broker.connect().await;
    let channel = conn.create_channel().await.unwrap();
    let _ = channel.queue_delete(topology.retry_queue(delay).as_str().into(), Default::default()).await;
    let _ = channel.exchange_delete(topology.retry_exchange(delay).as_str().into(), Default::default()).await;
}
