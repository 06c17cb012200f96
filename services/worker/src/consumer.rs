//! The broker side: one connection, a channel per priority queue with its
//! own prefetch, a dispatcher that hands buffered deliveries to free worker
//! slots by priority, and reconnection with backoff when anything breaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use job_model::outbox::Backoff;
use job_model::{JobPriority, RetryPolicy, Topology};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::executor::Executor;
use crate::scheduler::PriorityPicker;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub amqp_url: String,
    pub topology: Topology,
    pub retry_policy: RetryPolicy,
    pub worker_count: usize,
    pub prefetch: u16,
    pub starvation_limit: u32,
    pub shutdown_grace: Duration,
    pub connection_name: String,
}

pub struct Consumer {
    pub config: ConsumerConfig,
    pub executor: Arc<Executor>,
    /// True while consuming; read by /readyz.
    pub connected: Arc<AtomicBool>,
}

struct Session {
    connection: Connection,
    channels: Vec<(JobPriority, Channel, String)>,
    publisher: Channel,
}

impl Consumer {
    /// Consumes until `shutdown`, reconnecting whenever the broker goes away.
    /// On shutdown: stop taking deliveries, let in-flight jobs finish within
    /// the grace period, give back the rest.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.worker_count));
        let jobs = TaskTracker::new();
        let abort = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !shutdown.is_cancelled() {
            let session = match self.open().await {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%error, "cannot reach the broker; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            backoff.reset();
            self.connected.store(true, Ordering::Relaxed);
            tracing::info!("consuming jobs.high, jobs.normal, jobs.low");
            let failed = self.consume(&session, &slots, &jobs, &abort, &shutdown).await;
            self.connected.store(false, Ordering::Relaxed);
            if failed {
                tracing::warn!("broker connection lost; reconnecting");
                let _ = session.connection.close(200, "reconnecting".into()).await;
                continue;
            }
            // Shutdown: in-flight jobs still need this connection to ack.
            self.drain(&jobs, &abort).await;
            let _ = session.connection.close(200, "shutting down".into()).await;
            return;
        }
        self.drain(&jobs, &abort).await;
    }

    async fn drain(&self, jobs: &TaskTracker, abort: &CancellationToken) {
        jobs.close();
        if tokio::time::timeout(self.config.shutdown_grace, jobs.wait()).await.is_err() {
            tracing::warn!("shutdown grace period over; giving unfinished jobs back");
            abort.cancel();
            jobs.wait().await;
        }
    }

    async fn open(&self) -> lapin::Result<Session> {
        let props = ConnectionProperties::default().with_connection_name(self.config.connection_name.clone().into());
        let connection = Connection::connect(&self.config.amqp_url, props).await?;
        let setup = connection.create_channel().await?;
        self.config.topology.declare(&setup).await?;
        self.config.topology.declare_retry_tiers(&setup, &self.config.retry_policy).await?;
        let _ = setup.close(200, "declared".into()).await;

        let mut channels = Vec::new();
        for priority in JobPriority::ALL {
            let channel = connection.create_channel().await?;
            // Prefetch per consumer (global=false): the most unacked messages
            // one queue may push to this worker, running plus waiting.
            channel.basic_qos(self.config.prefetch, BasicQosOptions { global: false }).await?;
            channels.push((priority, channel, self.config.topology.job_queue(priority)));
        }
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Session { connection, channels, publisher })
    }

    /// Dispatches until shutdown (returns false) or a broken connection (true).
    async fn consume(
        &self,
        session: &Session,
        slots: &Arc<Semaphore>,
        jobs: &TaskTracker,
        abort: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> bool {
        let broken = CancellationToken::new();
        let mut receivers = Vec::new();
        let mut tags = Vec::new();
        for (priority, channel, queue) in &session.channels {
            let consumer = match channel
                .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
                .await
            {
                Ok(consumer) => consumer,
                Err(error) => {
                    tracing::warn!(%error, queue, "basic.consume failed");
                    return true;
                }
            };
            tags.push((channel.clone(), consumer.tag()));
            let (tx, rx) = mpsc::channel::<Delivery>(usize::from(self.config.prefetch).max(1));
            tokio::spawn(forward(consumer, tx, broken.clone()));
            receivers.push((*priority, rx));
        }

        let mut picker = PriorityPicker::new(self.config.starvation_limit);
        let result = loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = shutdown.cancelled() => break false,
                _ = broken.cancelled() => break true,
            };
            let next = match picker.pick(|p| receivers.iter().any(|(q, rx)| *q == p && !rx.is_empty())) {
                Some(p) => {
                    receivers.iter_mut().find(|(q, _)| *q == p).and_then(|(q, rx)| rx.try_recv().ok().map(|d| (*q, d)))
                }
                None => None,
            };
            let (priority, delivery) = match next {
                Some(next) => next,
                None => {
                    let [(_, high), (_, normal), (_, low)] = &mut receivers[..] else { unreachable!("three queues") };
                    tokio::select! {
                        biased;
                        Some(d) = high.recv() => (JobPriority::High, d),
                        Some(d) = normal.recv() => (JobPriority::Normal, d),
                        Some(d) = low.recv() => (JobPriority::Low, d),
                        _ = shutdown.cancelled() => break false,
                        _ = broken.cancelled() => break true,
                    }
                }
            };
            let executor = self.executor.clone();
            let publisher = session.publisher.clone();
            let abort = abort.clone();
            jobs.spawn(async move {
                executor.handle(priority, delivery, publisher, abort).await;
                drop(permit);
            });
        };

        if !result {
            // Stop the broker pushing more, then give back what is buffered.
            for (channel, tag) in &tags {
                let _ = channel.basic_cancel(tag.clone(), BasicCancelOptions::default()).await;
            }
            for (_, rx) in &mut receivers {
                rx.close();
                while let Some(delivery) = rx.recv().await {
                    let _ = delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                }
            }
        }
        result
    }
}

/// Moves deliveries from a consumer stream into a bounded buffer; an error
/// or the stream's end (other than on shutdown) marks the session broken,
/// never silently ends consumption.
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
                    broken.cancel();
                }
                return;
            }
        }
    }
}
