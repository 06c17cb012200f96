//! docflow's AMQP layer, the only code that speaks to RabbitMQ: declaring
//! the topology, backoff, one reconnecting consumer session for every
//! consumer, a publisher with confirms and timeouts, the outbox relay, and
//! the messaging spans. Services bring handlers; this crate brings the
//! queue mechanics.

pub mod backoff;
mod connection;
pub mod consume;
mod priority;
pub mod probe;
pub mod publisher;
pub mod relay;
pub mod spans;
pub mod topology;

pub use backoff::Backoff;
pub use connection::{ca_file, connect};
pub use consume::{Batch, Consumer, ConsumerConfig, Handler, QueueSpec, Settle};
pub use publisher::{Outgoing, PublishError, Publisher};
pub use relay::{OutboxRelay, RelayConfig, RelayStats, UnroutablePolicy};

/// A string header of a delivery (the ones docflow sets are long strings).
pub fn header(delivery: &lapin::message::Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        lapin::types::AMQPValue::LongString(s) => Some(s.to_string()),
        lapin::types::AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Re-exported so handlers can read deliveries without naming lapin's
/// version themselves.
pub use lapin;
