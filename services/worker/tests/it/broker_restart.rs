//! A real broker restart, not a proxy cut: a RabbitMQ node of the test's
//! own (its own port and data directory) is stopped cleanly while jobs are
//! running and more are submitted, and started again on the same port and
//! data. Quorum queues keep their messages across it; every service
//! reconnects; every job completes exactly once.

use std::time::Duration;

use test_support::PrivateRabbitMq;
use test_support::eventually;

use crate::platform::{Platform, Setup, text_invoice};

#[tokio::test]
async fn a_broker_restart_mid_run_loses_and_duplicates_nothing() {
    let mut rabbit = PrivateRabbitMq::start_plain().await;
    let mut platform =
        Platform::start(Setup { workers: 0, amqp_url: Some(rabbit.plain_url()), ..Setup::default() }).await;
    platform.start_metrics_tracker().await;
    platform.start_worker(&[]).await;
    let mut jobs = Vec::new();
    for i in 0..80 {
        let id = format!("restart-{i}");
        jobs.push(platform.submit_document(&id, "invoice.txt", &text_invoice(&id), "NORMAL").await);
    }
    eventually(Duration::from_secs(60), "some jobs done", || async {
        (platform.count("SELECT count(*) FROM jobs WHERE status = 'COMPLETED'").await >= 5).then_some(())
    })
    .await;

    rabbit.stop().await;
    // Submissions go on while the broker is down: they wait in the outbox.
    for i in 80..120 {
        let id = format!("restart-{i}");
        jobs.push(platform.submit_document(&id, "invoice.txt", &text_invoice(&id), "HIGH").await);
    }
    rabbit.start_again().await;

    for job in &jobs {
        let status = platform.wait_final(job, Duration::from_secs(120)).await;
        assert_eq!(status["job_status"], "COMPLETED", "{status}");
    }
    let not_once = platform.jobs_not_completed_exactly_once().await;
    assert_eq!(not_once, 0, "each job completed exactly once");
    assert_eq!(platform.count("SELECT count(*) FROM document_results").await, jobs.len() as i64);
    eventually(Duration::from_secs(60), "metrics-tracker to record every job", || async {
        let recorded =
            platform.count("SELECT count(DISTINCT job_id) FROM metric_executions WHERE outcome = 'completed'").await;
        (recorded == jobs.len() as i64).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "the outbox to drain", || async {
        (platform.count("SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;
    let consuming = format!("consuming {}", platform.broker.topology.job_queue(job_model::JobPriority::High));
    assert!(platform.workers[0].log_text().matches(&consuming).count() >= 2, "the worker reconnected");
}
