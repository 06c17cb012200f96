//! Declares the topology of DESIGN.md ("RabbitMQ topology") that
//! `job_model::Topology` names. Every service runs this at every start:
//! declarations with equal arguments are no-ops.

use job_model::topology::DELIVERY_LIMIT;
use job_model::{JobPriority, RetryPolicy, Topology};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use std::time::Duration;

use lapin::{Channel, Connection, ExchangeKind};

/// Declares exchanges, job queues, the DLQ and the events queue. Safe to
/// run from every service at every start: declarations with equal
/// arguments are no-ops. Declares on a channel of its own, which a refused
/// declaration closes (see [`Declarer`]).
pub async fn declare(topology: &Topology, connection: &Connection) -> lapin::Result<()> {
    let mut declarer = Declarer::open(connection).await?;
    declarer.exchange(&topology.jobs_exchange(), ExchangeKind::Direct).await?;
    declarer.exchange(&topology.dlq_exchange(), ExchangeKind::Fanout).await?;
    declarer.exchange(&topology.events_exchange(), ExchangeKind::Topic).await?;

    for priority in JobPriority::ALL {
        let mut args = dead_lettering_args(&topology.dlq_exchange());
        args.insert(short("x-delivery-limit"), AMQPValue::LongLongInt(DELIVERY_LIMIT));
        let queue = topology.job_queue(priority);
        declarer.dead_lettering_queue(&queue, args).await?;
        declarer.bind(&queue, &topology.jobs_exchange(), priority.routing_key()).await?;
    }

    declarer.queue(&topology.dlq_queue(), quorum_args()).await?;
    declarer.bind(&topology.dlq_queue(), &topology.dlq_exchange(), "").await?;

    declarer.queue(&topology.metrics_events_queue(), quorum_args()).await?;
    declarer.bind(&topology.metrics_events_queue(), &topology.events_exchange(), "#").await?;
    declarer.close().await;
    Ok(())
}

/// Declares one queue per retry tier. A message waits there for the
/// tier's TTL (or its own shorter `expiration`, which carries the jitter),
/// then dead-letters back to `docflow.jobs` under its original routing key.
pub async fn declare_retry_tiers(
    topology: &Topology,
    connection: &Connection,
    policy: &RetryPolicy,
) -> lapin::Result<()> {
    for delay in policy.tiers() {
        declare_retry_tier(topology, connection, delay).await?;
    }
    Ok(())
}

/// One tier of [`declare_retry_tiers`].
pub async fn declare_retry_tier(topology: &Topology, connection: &Connection, delay: Duration) -> lapin::Result<()> {
    let mut declarer = Declarer::open(connection).await?;
    let exchange = topology.retry_exchange(delay);
    declarer.exchange(&exchange, ExchangeKind::Fanout).await?;
    let mut args = dead_lettering_args(&topology.jobs_exchange());
    args.insert(short("x-message-ttl"), AMQPValue::LongLongInt(delay.as_millis() as i64));
    let queue = topology.retry_queue(delay);
    declarer.dead_lettering_queue(&queue, args).await?;
    declarer.bind(&queue, &exchange, "").await?;
    declarer.close().await;
    Ok(())
}

/// Declarations on one channel, opening another when the broker closed it
/// by refusing one.
struct Declarer<'a> {
    connection: &'a Connection,
    channel: Channel,
}

impl<'a> Declarer<'a> {
    async fn open(connection: &'a Connection) -> lapin::Result<Declarer<'a>> {
        Ok(Declarer { connection, channel: connection.create_channel().await? })
    }

    async fn exchange(&self, name: &str, kind: ExchangeKind) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        self.channel.exchange_declare(name.into(), kind, durable, FieldTable::default()).await
    }

    async fn queue(&self, name: &str, args: FieldTable) -> lapin::Result<()> {
        let options = QueueDeclareOptions { durable: true, ..Default::default() };
        self.channel.queue_declare(name.into(), options, args).await.map(|_| ())
    }

    /// A queue with [`dead_lettering_args`]. One declared by an older
    /// version without them is kept as it is (RabbitMQ refuses to change a
    /// queue's arguments, and would refuse every start): a loud warning
    /// rather than a service that cannot start against its own queues.
    async fn dead_lettering_queue(&mut self, name: &str, args: FieldTable) -> lapin::Result<()> {
        match self.queue(name, args).await {
            Err(error) if precondition_failed(&error) => {
                tracing::warn!(
                    queue = name,
                    %error,
                    "queue was declared earlier with other arguments and is kept as it is: its dead letters stay \
                     at-most-once until it is deleted and declared again, or a policy sets dead-letter-strategy \
                     at-least-once with overflow reject-publish"
                );
                self.channel = self.connection.create_channel().await?;
                let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                self.channel.queue_declare(name.into(), passive, FieldTable::default()).await.map(|_| ())
            }
            other => other,
        }
    }

    async fn bind(&self, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
        self.channel
            .queue_bind(queue.into(), exchange.into(), key.into(), QueueBindOptions::default(), FieldTable::default())
            .await
    }

    async fn close(self) {
        let _ = self.channel.close(200, "declared".into()).await;
    }
}

/// 406 PRECONDITION_FAILED: a declaration that contradicts what exists.
fn precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 406)
}

fn short(s: &str) -> ShortString {
    s.into()
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Quorum queues replicate and survive node loss; they must be durable and
/// cannot be exclusive or auto-delete (RabbitMQ docs, "Quorum Queues").
fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(short("x-queue-type"), long("quorum"));
    args
}

/// A quorum queue whose dead letters carry a job on: to the DLQ (job
/// queues, past the delivery limit) or back to the jobs exchange (retry
/// tiers, at the TTL). The quorum default, at-most-once, drops a dead letter
/// the target does not confirm, and with it the job; at-least-once keeps it
/// until the target confirms, and needs `reject-publish` overflow (RabbitMQ
/// docs, "Quorum Queues", at-least-once dead-lettering).
fn dead_lettering_args(dead_letter_exchange: &str) -> FieldTable {
    let mut args = quorum_args();
    args.insert(short("x-dead-letter-exchange"), long(dead_letter_exchange));
    args.insert(short("x-dead-letter-strategy"), long("at-least-once"));
    args.insert(short("x-overflow"), long("reject-publish"));
    args
}
