//! Reading queue counters (messages ready, consumers) with passive
//! declares, for reports and autoscaling.

use std::time::Duration;

use lapin::Connection;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio::sync::Mutex;

/// A lazily opened broker connection used only to read queue counters.
pub struct BrokerProbe {
    amqp_url: String,
    connection_name: String,
    connection: Mutex<Option<Connection>>,
}

/// What a passive declare tells about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerQueue {
    pub messages_ready: u32,
    pub consumer_count: u32,
}

impl BrokerProbe {
    pub fn new(amqp_url: String, connection_name: String) -> BrokerProbe {
        BrokerProbe { amqp_url, connection_name, connection: Mutex::new(None) }
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
            *guard = Some(crate::connect(&self.amqp_url, &self.connection_name).await?);
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
