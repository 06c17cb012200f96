//! Execution traces: every attempt, every stage, the trace id; pagination.

use std::collections::HashSet;

use chrono::{TimeDelta, Utc};
use job_model::{AttemptOutcome, JobPriority};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{STAGES, TestApp, event_with, mixed_events};

#[tokio::test]
async fn a_jobs_trace_shows_every_attempt_and_stage() {
    let app = TestApp::spawn().await;
    let job_id = Uuid::now_v7();
    let now = Utc::now();
    let first = event_with(
        job_id,
        1,
        JobPriority::High,
        AttemptOutcome::Retrying,
        &[12.0, 3.0, 40.0],
        25.0,
        now - TimeDelta::seconds(5),
    );
    let second = event_with(
        job_id,
        2,
        JobPriority::High,
        AttemptOutcome::Completed,
        &[10.0, 2.0, 30.0, 200.0, 50.0, 8.0, 4.0, 20.0],
        3000.0,
        now,
    );
    let others = mixed_events(5, 99);
    app.publish(&[second.clone(), first.clone()]).await;
    app.publish(&others).await;
    app.consumed(2 + others.len() as u64, 0, 0).await;

    let trace = app.json(&format!("/api/executions/{job_id}")).await;
    assert_eq!(trace["job_id"], job_id.to_string());
    let attempts = trace["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["outcome"], "retrying");
    assert_eq!(attempts[0]["error_stage"], "classification");
    assert_eq!(attempts[0]["trace_id"], first.trace_id.clone().unwrap());
    let stages = attempts[0]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[2]["status"], "failed");
    assert_eq!(stages[2]["error"], "classification failed");
    assert_eq!(stages[1]["offset_ms"], 13.0);
    assert_eq!(stages[1]["duration_ms"], 3.0);

    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["outcome"], "completed");
    assert_eq!(attempts[1]["priority"], "HIGH");
    let stages = attempts[1]["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(names, STAGES);
    assert!(stages.iter().all(|s| s["status"] == "succeeded"));
    for (s, t) in stages.iter().zip(&second.stages) {
        assert_eq!(s["offset_ms"], t.offset_ms);
        assert_eq!(s["duration_ms"], t.duration_ms);
        assert_eq!(s["seq"], t.seq);
    }
    assert_eq!(attempts[1]["total_duration_ms"], second.total_duration_ms);

    let missing = app.get(&format!("/api/executions/{}", Uuid::now_v7())).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "job_not_found");
    assert_eq!(app.get("/api/executions/not-a-uuid").await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn executions_page_newest_first_with_filters() {
    let app = TestApp::spawn().await;
    let events = mixed_events(23, 5);
    app.publish(&events).await;
    app.consumed(events.len() as u64, 0, 0).await;

    // Pages of 5 cover every attempt exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/executions?limit=5&cursor={c}"),
            None => "/api/executions?limit=5".to_owned(),
        };
        let page = app.json(&path).await;
        for e in page["executions"].as_array().unwrap() {
            assert!(e["stages"].is_array());
            seen.push((
                e["finished_at"].as_str().unwrap().to_owned(),
                e["job_id"].as_str().unwrap().to_owned(),
                e["attempt"].as_i64().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), events.len());
    assert_eq!(seen.iter().map(|s| (&s.1, s.2)).collect::<HashSet<_>>().len(), events.len());
    let times: Vec<chrono::DateTime<Utc>> = seen.iter().map(|s| s.0.parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Status filter.
    let completed = events.iter().filter(|e| e.outcome == AttemptOutcome::Completed).count();
    let page = app.json("/api/executions?status=COMPLETED&limit=500").await;
    assert_eq!(page["executions"].as_array().unwrap().len(), completed);
    assert!(page["executions"].as_array().unwrap().iter().all(|e| e["outcome"] == "completed"));

    // Since filter.
    let since = times[9];
    let page = app.json(&format!("/api/executions?limit=500&since={}", since.to_rfc3339().replace('+', "%2B"))).await;
    let expected = times.iter().filter(|t| **t >= since).count();
    assert_eq!(page["executions"].as_array().unwrap().len(), expected);

    for bad in [
        "/api/executions?limit=0",
        "/api/executions?status=done",
        "/api/executions?since=yesterday",
        "/api/executions?cursor=zzz",
        "/api/executions?color=red",
    ] {
        assert_eq!(app.get(bad).await.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
