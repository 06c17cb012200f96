use std::time::Duration;

use futures::StreamExt;

use crate::platform::{Platform, Setup, text_invoice};

#[tokio::test]
async fn high_jobs_start_before_the_low_backlog_drains() {
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let invoice = text_invoice("INV-LOW");
    platform.put_blob("in/backlog/invoice.txt", &invoice);
    let size = invoice.len();
    let low: Vec<String> = futures::stream::iter(0..2000)
        .map(|i| {
            let platform = &platform;
            async move { platform.submit(&format!("low-{i}"), "in/backlog/invoice.txt", size, "LOW").await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(low.len(), 2000);

    platform.start_worker(&[("WORKER_COUNT", "2".into()), ("WORKER_PREFETCH_COUNT", "2".into())]).await;
    test_support::eventually(Duration::from_secs(60), "LOW work to be under way", || async {
        (platform.count("SELECT count(*) FROM jobs WHERE priority = 10 AND status = 'COMPLETED'").await >= 10)
            .then_some(())
    })
    .await;

    let mut high = Vec::new();
    for i in 0..20 {
        high.push(
            platform
                .submit_document(&format!("high-{i}"), "invoice.txt", &text_invoice(&format!("H{i}")), "HIGH")
                .await,
        );
    }
    for job in &high {
        assert_eq!(platform.wait_final(job, Duration::from_secs(120)).await["job_status"], "COMPLETED");
    }
    // Every HIGH job has started (and finished) while LOW jobs still wait.
    let waiting_low = platform.count("SELECT count(*) FROM jobs WHERE priority = 10 AND started_at IS NULL").await;
    assert!(waiting_low > 0, "the LOW backlog had not drained when the last HIGH job started");
    let last_high_start: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(started_at) FROM jobs WHERE priority = 1")
            .fetch_one(&platform.db.pool)
            .await
            .unwrap();
    let low_started_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE priority = 10 AND started_at > $1")
            .bind(last_high_start)
            .fetch_one(&platform.db.pool)
            .await
            .unwrap();
    let low_started_total =
        platform.count("SELECT count(*) FROM jobs WHERE priority = 10 AND started_at IS NOT NULL").await;
    assert!(
        low_started_after < low_started_total,
        "some LOW jobs ran before the HIGH ones arrived, and the HIGH ones did not wait for the rest"
    );
}
