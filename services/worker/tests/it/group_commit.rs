//! Outcomes that finish while the worker's writes are busy are recorded
//! together, in one statement, and every job still completes exactly once.

use std::time::Duration;

use sqlx::Connection;
use test_support::eventually;

use crate::platform::{Platform, Setup, text_invoice};

/// The value of an unlabelled sample in a Prometheus text exposition.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_finish_while_the_writes_are_held_share_one_commit() {
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let mut jobs = Vec::new();
    for i in 0..12 {
        let number = format!("GC-{i}");
        jobs.push(platform.submit_document(&number, "invoice.txt", &text_invoice(&number), "NORMAL").await);
    }

    // Hold every outcome write: they insert each attempt's stage timings,
    // which this lock blocks (claims and reads go on).
    let mut holder = sqlx::PgConnection::connect(&platform.db.url).await.unwrap();
    let mut hold = holder.begin().await.unwrap();
    sqlx::query("LOCK TABLE job_attempts IN EXCLUSIVE MODE").execute(&mut *hold).await.unwrap();

    let slots = [("WORKER_COUNT", "6".to_owned()), ("WORKER_PREFETCH_COUNT", "6".to_owned())];
    platform.start_worker(&slots).await;
    let port = platform.workers[0].port;
    let scrape = || async {
        let r = platform.http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.ok()?;
        r.text().await.ok()
    };
    // All six slots have run their stages (the attempt's duration is
    // observed before its outcome is handed to the writer).
    eventually(Duration::from_secs(60), "six attempts waiting to be recorded", || async {
        let metrics = scrape().await?;
        let finished =
            sample(&metrics, "docflow_worker_job_duration_seconds_count{outcome=\"completed\",priority=\"normal\"}")?;
        (finished >= 6.0).then_some(())
    })
    .await;
    assert_eq!(platform.count("SELECT count(*) FROM jobs WHERE status = 'COMPLETED'").await, 0, "all held");
    hold.rollback().await.unwrap();

    for job in &jobs {
        let status = platform.wait_final(job, Duration::from_secs(60)).await;
        assert_eq!(status["job_status"], "COMPLETED", "{status}");
    }
    assert_eq!(platform.jobs_not_completed_exactly_once().await, 0, "each job completed once");

    let metrics = scrape().await.unwrap();
    let attempts = sample(&metrics, "docflow_worker_outcome_group_size_sum").unwrap();
    let groups = sample(&metrics, "docflow_worker_outcome_group_size_count").unwrap();
    assert_eq!(attempts, 12.0, "every attempt was recorded through a group");
    // Two writes block on the lock, each with the attempt that found a
    // write slot free; the four that finished meanwhile wait for a slot and
    // go in one group once the lock is gone.
    assert!(groups <= 12.0 - 3.0, "{groups} groups for 12 attempts: the four held ones were not grouped");

    // Each attempt's execution event went out by handover (its outbox row
    // is claimed, so no poll could have taken it), under the right row id:
    // all twelve rows are gone.
    eventually(Duration::from_secs(20), "the twelve events to be handed over and deleted", || async {
        let handed = sample(&scrape().await?, "docflow_outbox_handed_over_total")?;
        let left = platform.count("SELECT count(*) FROM outbox").await;
        (handed == 12.0 && left == 0).then_some(())
    })
    .await;
}
