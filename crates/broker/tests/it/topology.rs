use std::time::Duration;

use broker::lapin::Connection;
use broker::lapin::options::QueueDeclareOptions;
use broker::lapin::types::{AMQPValue, FieldTable, LongString};
use job_model::{JobPriority, RetryPolicy};
use test_support::TestBroker;

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in pairs {
        table.insert((*k).into(), v.clone());
    }
    table
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declares `queue` with exactly `table`: Ok only if it exists with these
/// arguments (RabbitMQ refuses inequivalent ones with 406).
async fn has_arguments(conn: &Connection, queue: &str, table: FieldTable) -> bool {
    let channel = conn.create_channel().await.unwrap();
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    let ok = channel.queue_declare(queue.into(), options, table).await.is_ok();
    let _ = channel.close(200, "checked".into()).await;
    ok
}

/// The arguments of a job queue as an older docflow declared them.
fn at_most_once_job_queue(dlx: &str) -> FieldTable {
    args(&[
        ("x-queue-type", text("quorum")),
        ("x-dead-letter-exchange", text(dlx)),
        ("x-delivery-limit", AMQPValue::LongLongInt(job_model::topology::DELIVERY_LIMIT)),
    ])
}

#[tokio::test]
async fn job_queues_and_retry_tiers_dead_letter_at_least_once() {
    let mut broker = TestBroker::new();
    let policy = RetryPolicy { base: Duration::from_millis(100), cap: Duration::from_millis(200) };
    broker.retry_policy = Some(policy.clone());
    let conn = broker.connect().await;
    broker::topology::declare(&broker.topology, &conn).await.unwrap();
    broker::topology::declare_retry_tiers(&broker.topology, &conn, &policy).await.unwrap();

    let dlx = broker.topology.dlq_exchange();
    let at_least_once = [("x-dead-letter-strategy", text("at-least-once")), ("x-overflow", text("reject-publish"))];
    for priority in JobPriority::ALL {
        let queue = broker.topology.job_queue(priority);
        let mut expected = at_most_once_job_queue(&dlx);
        for (k, v) in &at_least_once {
            expected.insert((*k).into(), v.clone());
        }
        assert!(has_arguments(&conn, &queue, expected).await, "{queue} dead-letters at least once");
        assert!(!has_arguments(&conn, &queue, at_most_once_job_queue(&dlx)).await, "{queue} has no older arguments");
    }
    for delay in policy.tiers() {
        let queue = broker.topology.retry_queue(delay);
        let mut expected = args(&[
            ("x-queue-type", text("quorum")),
            ("x-dead-letter-exchange", text(&broker.topology.jobs_exchange())),
            ("x-message-ttl", AMQPValue::LongLongInt(delay.as_millis() as i64)),
        ]);
        for (k, v) in &at_least_once {
            expected.insert((*k).into(), v.clone());
        }
        assert!(has_arguments(&conn, &queue, expected).await, "{queue} dead-letters at least once");
    }
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test]
async fn a_queue_an_older_version_declared_is_kept_and_the_rest_of_the_topology_still_declared() {
    let broker = TestBroker::new();
    let conn = broker.connect().await;
    let old = broker.topology.job_queue(JobPriority::Normal);
    let dlx = broker.topology.dlq_exchange();
    assert!(has_arguments(&conn, &old, at_most_once_job_queue(&dlx)).await);

    broker::topology::declare(&broker.topology, &conn).await.expect("a start against older queues succeeds");

    assert!(has_arguments(&conn, &old, at_most_once_job_queue(&dlx)).await, "kept as it was");
    // Everything declared after it is there (passive declares fail on a missing queue).
    for queue in broker.topology.queue_names(None) {
        let channel = conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("{queue}: {e}"));
    }
    let _ = conn.close(200, "done".into()).await;
}
