use std::time::Duration;

use serde_json::Value;

use crate::platform::{Platform, Setup, text_invoice};

/// A symlink pointing at itself: opening it fails with ELOOP, an I/O error
/// that is not "not found", i.e. the blob store failing, not the document.
fn break_blob(platform: &Platform, path: &str) {
    let full = platform.blob_dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&full);
    std::os::unix::fs::symlink(&full, &full).unwrap();
}

async fn events(platform: &Platform, job_id: &str) -> Vec<(String, Value)> {
    sqlx::query_as::<_, (String, sqlx::types::Json<Value>)>(
        "SELECT to_status, detail FROM job_events WHERE job_id = $1::uuid ORDER BY id",
    )
    .bind(job_id)
    .fetch_all(&platform.db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, d)| (s, d.0))
    .collect()
}

#[tokio::test]
async fn a_blob_store_failing_twice_then_recovering_completes_on_attempt_3() {
    let platform = Platform::start(Setup { retry_base_ms: 1000, retry_max_ms: 4000, ..Setup::default() }).await;
    let path = "in/flaky/invoice.txt";
    let bytes = text_invoice("INV-FLAKY");
    break_blob(&platform, path);
    let job = platform.submit("flaky", path, bytes.len(), "NORMAL").await;

    // After the second failure the job waits about 2 s (the 2nd tier, less
    // up to 20% jitter) in its retry tier: time enough to mend the store.
    test_support::eventually(Duration::from_secs(60), "the second retry to be scheduled", || async {
        let s = platform.status(&job).await;
        (s["job_status"] == "RETRYING" && s["retry_count"] == 2).then_some(())
    })
    .await;
    std::fs::remove_file(platform.blob_dir.join(path)).unwrap();
    platform.put_blob(path, &bytes);

    let done = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(done["job_status"], "COMPLETED", "{done}");
    assert_eq!(done["attempt"], 3);
    assert_eq!(done["retry_count"], 2);

    let history = events(&platform, &job).await;
    let statuses: Vec<&str> = history.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["QUEUED", "PROCESSING", "RETRYING", "PROCESSING", "RETRYING", "PROCESSING", "COMPLETED"]);
    let backoffs: Vec<u64> =
        history.iter().filter(|(s, _)| s == "RETRYING").map(|(_, d)| d["backoff_ms"].as_u64().unwrap()).collect();
    assert!((800..=1000).contains(&backoffs[0]), "first backoff ~1 s with jitter: {backoffs:?}");
    assert!((1600..=2000).contains(&backoffs[1]), "second backoff doubles: {backoffs:?}");
    let kinds: Vec<&str> =
        history.iter().filter(|(s, _)| s == "RETRYING").map(|(_, d)| d["error_kind"].as_str().unwrap()).collect();
    assert!(kinds.iter().all(|k| *k == kinds[0]), "{kinds:?}");
}

#[tokio::test]
async fn a_job_that_keeps_failing_goes_to_the_dlq_after_ten_retries() {
    // max_retries = 10 drives each message through the retry tiers' dead-letter
    // hop ten times; it must come back every time.
    let platform =
        Platform::start(Setup { max_retries: 10, retry_base_ms: 20, retry_max_ms: 80, ..Setup::default() }).await;
    let path = "in/broken-store/invoice.txt";
    break_blob(&platform, path);
    let job = platform.submit("always-failing", path, 100, "LOW").await;

    let done = platform.wait_final(&job, Duration::from_secs(120)).await;
    assert_eq!(done["job_status"], "DLQ", "{done}");
    assert_eq!(done["retry_count"], 10);
    assert_eq!(done["attempt"], 11);
    assert_eq!(done["error_stage"], "upload");
    assert!(done["error_message"].as_str().is_some_and(|m| !m.is_empty()), "{done}");

    let history = events(&platform, &job).await;
    assert_eq!(history.iter().filter(|(s, _)| s == "RETRYING").count(), 10);
    assert_eq!(history.last().unwrap().1["reason"], "retries_exhausted");

    let dlq = &platform.broker.topology.dlq_queue();
    let parked = test_support::eventually(Duration::from_secs(30), "the job on jobs.dlq", || async {
        let messages = platform.broker.drain(dlq, Duration::from_millis(100)).await;
        (!messages.is_empty()).then_some(messages)
    })
    .await;
    assert_eq!(parked.len(), 1);
    let envelope = job_model::JobEnvelope::decode(&parked[0].data).unwrap();
    assert_eq!(envelope.job_id().to_string(), job);
}
