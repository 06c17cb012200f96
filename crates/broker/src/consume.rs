//! The one consumer session every docflow consumer runs: connect, declare
//! the topology, consume one or more queues (in order of urgency, each on
//! its own channel with its own prefetch), hand deliveries to a [`Handler`]
//! as free slots allow, settle them as the handler says, and reconnect with
//! backoff whenever the broker goes away. A stream that errors or ends is a
//! reconnect, never the silent end of consumption.
//!
//! On shutdown: stop the broker pushing more (`basic.cancel`), give back
//! what is buffered, let running handler calls finish within the grace
//! period, then cancel their `abort` token and wait for them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use job_model::message::headers;
use job_model::{RetryPolicy, Topology};

use crate::backoff::Backoff;
use crate::priority::PriorityPicker;
use crate::publisher::{Outgoing, Publisher};

/// A queue to consume.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    /// Per-consumer prefetch (`global=false`): the most unacked messages this
    /// queue pushes to this process, running plus waiting.
    pub prefetch: u16,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub amqp_url: String,
    /// Name shown in the broker's connection list.
    pub connection_name: String,
    pub topology: Topology,
    /// Also declare the retry tiers of this policy (the worker publishes to them).
    pub retry_tiers: Option<RetryPolicy>,
    /// Queues in order of urgency: index 0 is served first.
    pub queues: Vec<QueueSpec>,
    /// Handler calls running at once.
    pub concurrency: usize,
    /// Up to this many deliveries of one queue per handler call...
    pub batch_size: usize,
    /// ...taken within this long of the first.
    pub linger: Duration,
    /// How often a less urgent queue with work waiting may be passed over.
    pub starvation_limit: u32,
    /// How long running handler calls may take after shutdown before their
    /// `abort` token is cancelled.
    pub shutdown_grace: Duration,
    /// The longest wait for a publisher confirm (dead-lettering a delivery).
    pub publish_timeout: Duration,
}

impl ConsumerConfig {
    /// `queues`, one delivery at a time; set the other fields to change that.
    pub fn new(amqp_url: String, connection_name: String, topology: Topology, queues: Vec<QueueSpec>) -> Self {
        ConsumerConfig {
            amqp_url,
            connection_name,
            topology,
            retry_tiers: None,
            queues,
            concurrency: 1,
            batch_size: 1,
            linger: Duration::ZERO,
            starvation_limit: 8,
            shutdown_grace: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(10),
        }
    }
}

/// Deliveries of one queue handed to one handler call, in delivery order.
#[derive(Debug)]
pub struct Batch {
    /// Index of the queue in [`ConsumerConfig::queues`].
    pub queue: usize,
    pub deliveries: Vec<Delivery>,
}

/// How to settle a batch once the handler is done with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Done (its outcome is committed): ack.
    Ack,
    /// Not done (shutting down, or the outcome could not be committed):
    /// back to its queue for another consumer.
    Requeue,
    /// No job can come of it (poison): publish it unchanged to the DLQ
    /// exchange with why (`x-dlq-reason`, `x-error`), ack it once the broker
    /// confirmed the copy, requeue it otherwise (the quorum queue's delivery
    /// limit dead-letters it in the end).
    DeadLetter { reason: String, error: String },
}

/// What a consumer does with deliveries.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one batch. `abort` is cancelled when the shutdown grace period
    /// is over: give the work back (return [`Settle::Requeue`]) instead of
    /// finishing it.
    async fn handle(&self, batch: &Batch, abort: &CancellationToken) -> Settle;
}

/// A reconnecting consumer of the queues in its config.
pub struct Consumer<H> {
    config: ConsumerConfig,
    handler: Arc<H>,
    connected: Arc<AtomicBool>,
    on_connection: Option<Arc<dyn Fn(bool) + Send + Sync>>,
}

struct Session {
    connection: Connection,
    channels: Vec<Channel>,
    /// Dead-letter copies go out on a connection of their own: during a
    /// memory or disk alarm the broker blocks every connection that
    /// publishes, and a publish on the consuming connection would stop its
    /// acks too (RabbitMQ's advice: separate publishers from consumers).
    publish_connection: Connection,
    publisher: Publisher,
}

impl Session {
    fn connected(&self) -> bool {
        self.connection.status().connected() && self.publish_connection.status().connected()
    }

    /// Closes both connections, waiting at most [`ABORT_WAIT`] for each
    /// (a broker that stopped reading never answers close-ok).
    async fn close(&self, why: &str) {
        for connection in [&self.connection, &self.publish_connection] {
            if tokio::time::timeout(ABORT_WAIT, connection.close(200, why.into())).await.is_err() {
                tracing::warn!("the broker did not answer connection.close in {ABORT_WAIT:?}; dropping the connection");
            }
        }
    }
}

enum Ended {
    Shutdown,
    Broken,
}

impl<H: Handler> Consumer<H> {
    pub fn new(config: ConsumerConfig, handler: Arc<H>) -> Self {
        assert!(!config.queues.is_empty(), "a consumer needs a queue");
        Consumer { config, handler, connected: Arc::default(), on_connection: None }
    }

    /// True while consuming (for readiness).
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    /// Report the connection state in `flag` (one the caller already shares).
    pub fn with_connected_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.connected = flag;
        self
    }

    /// Called with true on every (re)connect and false on every loss.
    pub fn on_connection(mut self, notify: impl Fn(bool) + Send + Sync + 'static) -> Self {
        self.on_connection = Some(Arc::new(notify));
        self
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        if let Some(notify) = &self.on_connection {
            notify(connected);
        }
    }

    /// Consumes until `shutdown`, reconnecting whenever the broker goes away.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let running = TaskTracker::new();
        let abort = CancellationToken::new();
        let mut backoff = Backoff::reconnect();
        let queues: String = self.config.queues.iter().map(|q| q.name.as_str()).collect::<Vec<_>>().join(", ");
        while !shutdown.is_cancelled() {
            let session = match self.open().await {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%error, connection = %self.config.connection_name, "cannot reach the broker; retrying");
                    backoff.wait(&shutdown).await;
                    continue;
                }
            };
            backoff.reset();
            self.set_connected(true);
            tracing::info!("consuming {queues}");
            let ended = self.consume(&session, &slots, &running, &abort, &shutdown).await;
            self.set_connected(false);
            match ended {
                Ended::Broken => {
                    tracing::warn!("broker connection lost; reconnecting to consume {queues}");
                    // Unacked deliveries go back to their queues when the
                    // connection closes; handler calls still running on them
                    // will fail to settle, and their redeliveries are
                    // recognised as duplicates.
                    session.close("reconnecting").await;
                    backoff.wait(&shutdown).await;
                }
                Ended::Shutdown => {
                    // Running handler calls still need this connection to settle.
                    self.drain(&running, &abort).await;
                    session.close("shutting down").await;
                    return;
                }
            }
        }
        self.drain(&running, &abort).await;
    }

    async fn drain(&self, running: &TaskTracker, abort: &CancellationToken) {
        running.close();
        if tokio::time::timeout(self.config.shutdown_grace, running.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(unfinished = running.len(), "shutdown grace period over; giving unfinished work back");
        abort.cancel();
        // Aborted work gives its jobs back at once; a call that still does
        // not return is stuck on a peer (a statement waiting on a lock, a
        // broker that stopped reading). Exiting anyway is safe: its
        // transaction rolls back and its deliveries go back to their queues
        // when the connections close, and the lease lets another worker run
        // the job. Hanging would strand it until the process is killed.
        if tokio::time::timeout(ABORT_WAIT, running.wait()).await.is_err() {
            tracing::error!(
                stuck = running.len(),
                "work still running {ABORT_WAIT:?} after it was told to stop; exiting without it"
            );
        }
    }

    async fn open(&self) -> lapin::Result<Session> {
        let connection = crate::connect(&self.config.amqp_url, &self.config.connection_name).await?;
        let publish_name = format!("{}-publish", self.config.connection_name);
        let publish_connection = match crate::connect(&self.config.amqp_url, &publish_name).await {
            Ok(publish_connection) => publish_connection,
            Err(error) => {
                let _ = connection.close(200, "could not open its publishing connection".into()).await;
                return Err(error);
            }
        };
        match self.set_up(&connection, &publish_connection).await {
            Ok((publisher, channels)) => Ok(Session { connection, channels, publish_connection, publisher }),
            Err(error) => {
                let _ = connection.close(200, "setup failed".into()).await;
                let _ = publish_connection.close(200, "setup failed".into()).await;
                Err(error)
            }
        }
    }

    /// Declares the topology, then opens the publisher and one consuming
    /// channel per queue.
    async fn set_up(
        &self,
        connection: &Connection,
        publish_connection: &Connection,
    ) -> lapin::Result<(Publisher, Vec<Channel>)> {
        let publisher = Publisher::open(publish_connection, self.config.publish_timeout).await?;
        crate::topology::declare(&self.config.topology, connection).await?;
        if let Some(policy) = &self.config.retry_tiers {
            crate::topology::declare_retry_tiers(&self.config.topology, connection, policy).await?;
        }
        let mut channels = Vec::with_capacity(self.config.queues.len());
        for queue in &self.config.queues {
            let channel = connection.create_channel().await?;
            channel.basic_qos(queue.prefetch.max(1), BasicQosOptions { global: false }).await?;
            channels.push(channel);
        }
        Ok((publisher, channels))
    }

    /// Dispatches until shutdown or a broken connection.
    async fn consume(
        &self,
        session: &Session,
        slots: &Arc<Semaphore>,
        running: &TaskTracker,
        abort: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Ended {
        let broken = CancellationToken::new();
        let mut inboxes = Vec::with_capacity(session.channels.len());
        let mut tags = Vec::new();
        for (queue, channel) in self.config.queues.iter().zip(&session.channels) {
            let consumer = match channel
                .basic_consume(
                    queue.name.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
            {
                Ok(consumer) => consumer,
                Err(error) => {
                    tracing::warn!(%error, queue = %queue.name, "basic.consume failed");
                    return Ended::Broken;
                }
            };
            tags.push((channel.clone(), consumer.tag()));
            let (tx, rx) = mpsc::channel::<Delivery>(usize::from(queue.prefetch).max(1));
            tokio::spawn(forward(consumer, tx, broken.clone()));
            inboxes.push(rx);
        }

        let mut picker = PriorityPicker::new(inboxes.len(), self.config.starvation_limit);
        let ended = loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = shutdown.cancelled() => break Ended::Shutdown,
                _ = broken.cancelled() => break Ended::Broken,
            };
            let (queue, first) = match picker.pick(|i| !inboxes[i].is_empty()) {
                Some(i) => match inboxes[i].try_recv() {
                    Ok(delivery) => (i, delivery),
                    Err(_) => continue,
                },
                None => tokio::select! {
                    // Nothing buffered: the first delivery of any queue, most
                    // urgent first when several are ready at once.
                    biased;
                    _ = shutdown.cancelled() => break Ended::Shutdown,
                    _ = broken.cancelled() => break Ended::Broken,
                    next = first_of(&mut inboxes) => match next {
                        Some(next) => next,
                        None => break Ended::Broken,
                    },
                    // A stalled stream (no error, no deliveries) on a dead
                    // connection: look now and then.
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        if !session.connected() {
                            break Ended::Broken;
                        }
                        continue;
                    }
                },
            };
            let mut deliveries = vec![first];
            if self.config.batch_size > 1 {
                let deadline = tokio::time::Instant::now() + self.config.linger;
                while deliveries.len() < self.config.batch_size {
                    match tokio::time::timeout_at(deadline, inboxes[queue].recv()).await {
                        Ok(Some(delivery)) => deliveries.push(delivery),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            let batch = Batch { queue, deliveries };
            let handler = self.handler.clone();
            let publisher = session.publisher.clone();
            let abort = abort.clone();
            let dlq_exchange = self.config.topology.dlq_exchange();
            // Acking the last delivery with `multiple` settles the whole
            // batch (AMQP 0-9-1 basic.ack), but only when no other handler
            // call holds earlier deliveries of the same channel.
            let multiple = self.config.concurrency <= 1;
            // Dead-lettering publishes (and waits for a confirm) per delivery.
            let settle_limit = ABORT_WAIT + self.config.publish_timeout * batch.deliveries.len() as u32;
            running.spawn(async move {
                let settle = handler.handle(&batch, &abort).await;
                settle_batch(&batch, settle, &publisher, &dlq_exchange, multiple, settle_limit).await;
                drop(permit);
            });
        };

        if matches!(ended, Ended::Shutdown) {
            // Stop the broker pushing more, then give back what is buffered.
            // Each wait bounded: a broker that stopped reading must not keep
            // the process from exiting (closing the connection requeues all).
            for (channel, tag) in &tags {
                let cancel = channel.basic_cancel(tag.clone(), BasicCancelOptions::default());
                let _ = tokio::time::timeout(ABORT_WAIT, cancel).await;
            }
            for inbox in &mut inboxes {
                inbox.close();
                while let Some(delivery) = inbox.recv().await {
                    let nack = delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() });
                    let _ = tokio::time::timeout(ABORT_WAIT, nack).await;
                }
            }
        }
        ended
    }
}

/// The first delivery any inbox yields, with its queue index, most urgent
/// first when several are ready; None when an inbox closed.
async fn first_of(inboxes: &mut [mpsc::Receiver<Delivery>]) -> Option<(usize, Delivery)> {
    futures::future::poll_fn(|cx| {
        for (i, inbox) in inboxes.iter_mut().enumerate() {
            match inbox.poll_recv(cx) {
                std::task::Poll::Ready(Some(delivery)) => return std::task::Poll::Ready(Some((i, delivery))),
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(None),
                std::task::Poll::Pending => {}
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Moves deliveries from a consumer stream into a bounded buffer; an error
/// or the stream's end (other than on shutdown) marks the session broken.
async fn forward(mut consumer: lapin::Consumer, tx: mpsc::Sender<Delivery>, broken: CancellationToken) {
    loop {
        match consumer.next().await {
            Some(Ok(delivery)) => {
                if tx.send(delivery).await.is_err() {
                    return; // the dispatcher closed the buffer: shutdown
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer stream failed");
                broken.cancel();
                return;
            }
            None => {
                if !tx.is_closed() {
                    tracing::warn!("consumer stream ended (consumer cancelled by the broker?)");
                    broken.cancel();
                }
                return;
            }
        }
    }
}

/// How long shutdown waits for work that was told to stop, and for a
/// connection to close; and how long one settle (ack, nack) may take.
const ABORT_WAIT: Duration = Duration::from_secs(5);

async fn settle_batch(
    batch: &Batch,
    settle: Settle,
    publisher: &Publisher,
    dlq_exchange: &str,
    multiple: bool,
    limit: Duration,
) {
    // An ack the broker never takes (a connection it stopped reading) must
    // not hold the slot, nor shutdown, forever: the delivery is redelivered
    // when the connection goes, and consumers recognise the redelivery.
    let settled = tokio::time::timeout(limit, settle_batch_now(batch, settle, publisher, dlq_exchange, multiple));
    if settled.await.is_err() {
        tracing::warn!("settling deliveries took over {limit:?}; the broker will redeliver them");
    }
}

async fn settle_batch_now(batch: &Batch, settle: Settle, publisher: &Publisher, dlq_exchange: &str, multiple: bool) {
    let requeue = BasicNackOptions { requeue: true, ..Default::default() };
    let result = match settle {
        Settle::Ack if multiple => batch
            .deliveries
            .last()
            .expect("a batch is never empty")
            .acker
            .ack(BasicAckOptions { multiple: true })
            .await
            .map(|_| ()),
        Settle::Ack => ack_each(&batch.deliveries).await,
        Settle::Requeue => nack_each(&batch.deliveries, requeue).await,
        Settle::DeadLetter { reason, error } => {
            let mut result = Ok(());
            for delivery in &batch.deliveries {
                let settled = match dead_letter(delivery, publisher, dlq_exchange, &reason, &error).await {
                    Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await.map(|_| ()),
                    Err(publish_error) => {
                        tracing::error!(%publish_error, "could not dead-letter a poison message; requeueing it");
                        delivery.acker.nack(requeue).await.map(|_| ())
                    }
                };
                result = result.and(settled);
            }
            result
        }
    };
    // A lost channel means the broker redelivers; consumers recognise the
    // redelivery (a finished job, an event already recorded).
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle deliveries; the broker will redeliver them");
    }
}

async fn ack_each(deliveries: &[Delivery]) -> lapin::Result<()> {
    for delivery in deliveries {
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

async fn nack_each(deliveries: &[Delivery], options: BasicNackOptions) -> lapin::Result<()> {
    for delivery in deliveries {
        delivery.acker.nack(options).await?;
    }
    Ok(())
}

/// Publishes a delivery's body unchanged to the DLQ exchange, with why.
async fn dead_letter(
    delivery: &Delivery,
    publisher: &Publisher,
    exchange: &str,
    reason: &str,
    error: &str,
) -> Result<(), crate::PublishError> {
    let h = BTreeMap::from([
        (headers::DLQ_REASON.to_owned(), reason.to_owned()),
        (headers::ERROR.to_owned(), error.to_owned()),
        ("x-original-exchange".to_owned(), delivery.exchange.to_string()),
        ("x-original-routing-key".to_owned(), delivery.routing_key.to_string()),
    ]);
    publisher
        .publish(Outgoing {
            exchange,
            routing_key: delivery.routing_key.as_str(),
            payload: &delivery.data,
            headers: &h,
            expiration: None,
            json: false,
            mandatory: false,
        })
        .await
}
