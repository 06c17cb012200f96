//! Publishing with publisher confirms, every wait bounded by a timeout. A
//! publish without confirms "succeeds" once written to the socket, which is
//! no proof the broker has the message (RabbitMQ docs, "Consumer
//! Acknowledgements and Publisher Confirms").

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use job_model::message::headers;

/// Why a message is not known to be on the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused the message (nack)")]
    Nacked,
    /// Mandatory and no queue bound for it: is the topology declared?
    #[error("message to {exchange:?} with routing key {routing_key:?} was unroutable")]
    Unroutable { exchange: String, routing_key: String },
    #[error("no confirm within {0:?} (is the broker blocked by a resource alarm?)")]
    TimedOut(Duration),
}

impl PublishError {
    /// Whether the channel is unusable after this error (reconnect).
    pub fn breaks_channel(&self) -> bool {
        matches!(self, PublishError::Amqp(_) | PublishError::TimedOut(_))
    }
}

/// One message to publish: persistent, string headers.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub payload: &'a [u8],
    pub headers: &'a BTreeMap<String, String>,
    pub expiration: Option<Duration>,
    /// JSON bodies say so; dead-lettered raw bodies carry no content type.
    pub json: bool,
    /// Come back unroutable instead of vanishing when no queue is bound.
    pub mandatory: bool,
}

/// A channel in confirm mode.
#[derive(Debug, Clone)]
pub struct Publisher {
    channel: Channel,
    timeout: Duration,
}

impl Publisher {
    pub async fn open(connection: &Connection, timeout: Duration) -> lapin::Result<Self> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Publisher { channel, timeout })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes every message, then waits for all their confirms together
    /// (one wait per batch, not per message), at most the timeout. Returns
    /// one result per message, in order; an error for the whole call when
    /// the channel failed or the wait timed out (then nothing is known).
    pub async fn publish_all(&self, messages: &[Outgoing<'_>]) -> Result<Vec<Result<(), PublishError>>, PublishError> {
        let wait = async {
            let mut confirms = Vec::with_capacity(messages.len());
            for m in messages {
                let options = BasicPublishOptions { mandatory: m.mandatory, ..Default::default() };
                confirms.push(
                    self.channel
                        .basic_publish(m.exchange.into(), m.routing_key.into(), options, m.payload, properties(m))
                        .await?,
                );
            }
            Ok::<_, PublishError>(join_all(confirms).await)
        };
        let confirmations =
            tokio::time::timeout(self.timeout, wait).await.map_err(|_| PublishError::TimedOut(self.timeout))??;
        Ok(messages
            .iter()
            .zip(confirmations)
            .map(|(m, confirmation)| match confirmation? {
                Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
                // A returned message: mandatory and unroutable.
                Confirmation::Ack(Some(_)) => Err(PublishError::Unroutable {
                    exchange: m.exchange.to_owned(),
                    routing_key: m.routing_key.to_owned(),
                }),
                Confirmation::Nack(_) => Err(PublishError::Nacked),
            })
            .collect())
    }

    /// Publishes one message and waits for its confirm.
    pub async fn publish(&self, message: Outgoing<'_>) -> Result<(), PublishError> {
        self.publish_all(&[message]).await?.pop().expect("one result per message")
    }
}

/// Persistent messages with string headers; the job id doubles as the
/// AMQP message id.
fn properties(m: &Outgoing<'_>) -> BasicProperties {
    let mut table = FieldTable::default();
    for (k, v) in m.headers {
        table.insert(k.as_str().into(), AMQPValue::LongString(LongString::from(v.as_str())));
    }
    let mut props = BasicProperties::default().with_delivery_mode(2).with_headers(table);
    if m.json {
        props = props.with_content_type("application/json".into());
    }
    if let Some(job_id) = m.headers.get(headers::JOB_ID) {
        props = props.with_message_id(job_id.as_str().into());
    }
    if let Some(ttl) = m.expiration {
        props = props.with_expiration(ttl.as_millis().to_string().into());
    }
    props
}
