//! Queue statistics: job counts per status from Postgres (the source of
//! truth), messages ready and consumers from RabbitMQ (passive declares).

pub use broker::probe::{BrokerProbe, BrokerQueue};
use job_model::{JobPriority, QueueStats, Topology};
use job_store::StoreResult;
use sqlx::PgPool;

/// One entry per priority queue, then one for the DLQ (no priority; its job
/// counts cover every priority).
pub async fn queue_stats(pool: &PgPool, topology: &Topology, probe: &BrokerProbe) -> StoreResult<Vec<QueueStats>> {
    let counts = job_store::stats::status_counts(pool).await?;
    let oldest = job_store::stats::queued_now(pool).await?;
    let mut names: Vec<String> = JobPriority::ALL.into_iter().map(|p| topology.job_queue(p)).collect();
    names.push(topology.dlq_queue());
    let broker = probe.inspect(&names).await;

    let count = |priority: Option<i16>, status: &str| -> i64 {
        counts.iter().filter(|(p, s, _)| priority.is_none_or(|x| x == *p) && s == status).map(|r| r.2).sum()
    };
    let mut stats = Vec::with_capacity(names.len());
    for (i, priority) in JobPriority::ALL.into_iter().enumerate() {
        let p = Some(priority.value());
        stats.push(QueueStats {
            queue: names[i].clone(),
            priority: Some(priority),
            queued: count(p, "QUEUED"),
            processing: count(p, "PROCESSING"),
            completed: count(p, "COMPLETED"),
            failed: count(p, "FAILED"),
            retrying: count(p, "RETRYING"),
            dlq: count(p, "DLQ"),
            messages_ready: broker[i].map(|b| b.messages_ready),
            consumer_count: broker[i].map(|b| b.consumer_count),
            oldest_message_age_seconds: oldest.get(&priority.value()).and_then(|(_, age)| *age),
        });
    }
    let dlq = broker[names.len() - 1];
    stats.push(QueueStats {
        queue: topology.dlq_queue(),
        priority: None,
        dlq: count(None, "DLQ"),
        messages_ready: dlq.map(|b| b.messages_ready),
        consumer_count: dlq.map(|b| b.consumer_count),
        ..Default::default()
    });
    Ok(stats)
}
