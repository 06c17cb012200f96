//! Queue statistics: job counts per status from Postgres (the source of
//! truth), messages ready and consumers from RabbitMQ (passive declares).

use std::time::Duration;

use job_model::{JobPriority, QueueStats, Topology};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// A lazily opened broker connection used only to read queue counters.
pub struct BrokerProbe {
    amqp_url: String,
    connection: Mutex<Option<Connection>>,
}

/// What a passive declare tells about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerQueue {
    pub messages_ready: u32,
    pub consumer_count: u32,
}

impl BrokerProbe {
    pub fn new(amqp_url: String) -> BrokerProbe {
        BrokerProbe { amqp_url, connection: Mutex::new(None) }
    }

    /// Counters of each queue; `None` for a queue that does not exist or
    /// when the broker cannot be reached within a couple of seconds.
    pub async fn inspect(&self, queues: &[String]) -> Vec<Option<BrokerQueue>> {
        match tokio::time::timeout(Duration::from_secs(3), self.try_inspect(queues)).await {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read queue counters from the broker");
                *self.connection.lock().await = None;
                vec![None; queues.len()]
            }
            Err(_) => {
                tracing::warn!("reading queue counters from the broker timed out");
                *self.connection.lock().await = None;
                vec![None; queues.len()]
            }
        }
    }

    async fn try_inspect(&self, queues: &[String]) -> lapin::Result<Vec<Option<BrokerQueue>>> {
        let mut guard = self.connection.lock().await;
        if !guard.as_ref().is_some_and(|c| c.status().connected()) {
            let props = ConnectionProperties::default().with_connection_name("metrics-tracker queue probe".into());
            *guard = Some(Connection::connect(&self.amqp_url, props).await?);
        }
        let connection = guard.as_ref().expect("connected above");
        let mut out = Vec::with_capacity(queues.len());
        for queue in queues {
            // A passive declare of a missing queue closes its channel (404),
            // so each queue gets its own.
            let channel = connection.create_channel().await?;
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            match channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await {
                Ok(q) => {
                    out.push(Some(BrokerQueue {
                        messages_ready: q.message_count(),
                        consumer_count: q.consumer_count(),
                    }));
                    let _ = channel.close(200, "done".into()).await;
                }
                Err(error) => {
                    tracing::debug!(%error, queue, "passive declare failed");
                    out.push(None);
                }
            }
        }
        Ok(out)
    }
}

/// Jobs per priority and status, over the whole `jobs` table.
pub async fn status_counts(pool: &PgPool) -> Result<Vec<(i16, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT priority, status, count(*) FROM jobs GROUP BY priority, status").fetch_all(pool).await
}

/// One entry per priority queue, then one for the DLQ (no priority; its job
/// counts cover every priority).
pub async fn queue_stats(
    pool: &PgPool,
    topology: &Topology,
    probe: &BrokerProbe,
) -> Result<Vec<QueueStats>, sqlx::Error> {
    let counts = status_counts(pool).await?;
    let oldest = crate::report::queued_now(pool).await?;
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
