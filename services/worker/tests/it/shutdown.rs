use std::time::Duration;

use test_support::eventually;

use crate::platform::{Platform, Setup, text_invoice};

#[tokio::test]
async fn sigterm_finishes_in_flight_jobs_loses_nothing_and_exits_0() {
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let mut jobs = Vec::new();
    for i in 0..60 {
        jobs.push(
            platform
                .submit_document(&format!("term-{i}"), "invoice.txt", &text_invoice(&format!("T{i}")), "NORMAL")
                .await,
        );
    }
    platform.start_worker(&[]).await;
    eventually(Duration::from_secs(60), "jobs in flight", || async {
        (platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await > 0).then_some(())
    })
    .await;

    let status = platform.workers[0].terminate(Duration::from_secs(60)).await;
    assert!(status.success(), "exit code 0 after SIGTERM, got {status}");
    assert_eq!(
        platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await,
        0,
        "in-flight jobs finished (or were given back) before exit"
    );

    platform.start_worker(&[]).await;
    for job in &jobs {
        assert_eq!(platform.wait_final(job, Duration::from_secs(120)).await["job_status"], "COMPLETED");
    }
    let completions = platform.count("SELECT count(*) FROM job_events WHERE to_status = 'COMPLETED'").await;
    assert_eq!(completions, jobs.len() as i64, "each job completed exactly once");
}
