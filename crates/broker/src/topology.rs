//! Declares the topology of DESIGN.md ("RabbitMQ topology") that
//! `job_model::Topology` names. Every service runs this at every start:
//! declarations with equal arguments are no-ops.

use job_model::topology::DELIVERY_LIMIT;
use job_model::{JobPriority, RetryPolicy, Topology};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

/// Declares exchanges, job queues, the DLQ and the events queue. Safe to
/// run from every service at every start: declarations with equal
/// arguments are no-ops.
pub async fn declare(topology: &Topology, channel: &Channel) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(topology.jobs_exchange().into(), ExchangeKind::Direct, durable, FieldTable::default())
        .await?;
    channel
        .exchange_declare(topology.dlq_exchange().into(), ExchangeKind::Fanout, durable, FieldTable::default())
        .await?;
    channel
        .exchange_declare(topology.events_exchange().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await?;

    for priority in JobPriority::ALL {
        let mut args = quorum_args();
        args.insert(short("x-delivery-limit"), AMQPValue::LongLongInt(DELIVERY_LIMIT));
        args.insert(short("x-dead-letter-exchange"), long(&topology.dlq_exchange()));
        let queue = topology.job_queue(priority);
        declare_queue(channel, &queue, args).await?;
        bind(channel, &queue, &topology.jobs_exchange(), priority.routing_key()).await?;
    }

    declare_queue(channel, &topology.dlq_queue(), quorum_args()).await?;
    bind(channel, &topology.dlq_queue(), &topology.dlq_exchange(), "").await?;

    declare_queue(channel, &topology.metrics_events_queue(), quorum_args()).await?;
    bind(channel, &topology.metrics_events_queue(), &topology.events_exchange(), "#").await?;
    Ok(())
}

/// Declares one queue per retry tier. A message waits there for the
/// tier's TTL (or its own shorter `expiration`, which carries the jitter),
/// then dead-letters back to `docflow.jobs` under its original routing key.
pub async fn declare_retry_tiers(topology: &Topology, channel: &Channel, policy: &RetryPolicy) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    for delay in policy.tiers() {
        let exchange = topology.retry_exchange(delay);
        channel.exchange_declare(exchange.clone().into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
        let mut args = quorum_args();
        args.insert(short("x-message-ttl"), AMQPValue::LongLongInt(delay.as_millis() as i64));
        args.insert(short("x-dead-letter-exchange"), long(&topology.jobs_exchange()));
        let queue = topology.retry_queue(delay);
        declare_queue(channel, &queue, args).await?;
        bind(channel, &queue, &exchange, "").await?;
    }
    Ok(())
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

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> lapin::Result<()> {
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(name.into(), options, args).await.map(|_| ())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
    channel
        .queue_bind(queue.into(), exchange.into(), key.into(), QueueBindOptions::default(), FieldTable::default())
        .await
}
