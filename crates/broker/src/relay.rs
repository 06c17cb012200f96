//! The outbox relay: publishes messages committed to the outbox with
//! publisher confirms, and deletes them only once the broker confirmed
//! them. A 202 therefore survives a broker outage; the price is
//! at-least-once publishing, which the worker's claim turns into
//! exactly-once effect.
//!
//! Rows reach it two ways. The process that committed them hands them
//! over ([`OutboxRelay::hand_over`]), and the relay publishes them at once
//! from memory and deletes what the broker confirmed: one statement per
//! handover, no poll between the commit and the publish. And it polls the
//! table for everything else: rows other processes wrote without handing
//! them over (dlq-admin's retries, the reaper's rescues), rows whose
//! handover failed or whose writer died, and rows held back after the
//! broker would not route them. Handed-over rows are claimed when written
//! (`job_store::outbox`), so the polls of every relay keep off them while
//! their writer publishes them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lapin::Connection;
use opentelemetry::trace::{Span as _, Status};
use sqlx::PgPool;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;

use job_model::Topology;
use job_store::outbox::{self, Deferred, LockedBatch, OutboxRow};
use job_store::{ConnectionCache, StoreError};

use crate::backoff::Backoff;
use crate::publisher::{Outgoing, PublishError, Publisher};

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub amqp_url: String,
    /// Name shown in the broker's connection list.
    pub connection_name: String,
    pub topology: Topology,
    /// Rows published at once, by a poll (in one transaction) or from
    /// handovers; one confirm wait per batch.
    pub batch_size: i64,
    /// How often to look for rows written by other processes (dlq-admin
    /// retries, other replicas) when nobody wakes the relay.
    pub poll_interval: Duration,
    /// The longest wait for a batch's confirms.
    pub publish_timeout: Duration,
    pub unroutable: UnroutablePolicy,
}

/// What happens to a message the broker would not route: the relay
/// re-declares the topology, tries the message again after `first_delay`,
/// doubling up to `max_delay`, and after `attempts` tries publishes it to
/// the dead-letter exchange instead (reason `unroutable`, with its original
/// exchange and routing key), where dlq-admin takes it in. The rest of its
/// batch goes out meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnroutablePolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for UnroutablePolicy {
    fn default() -> Self {
        UnroutablePolicy { attempts: 8, first_delay: Duration::from_secs(1), max_delay: Duration::from_secs(60) }
    }
}

impl UnroutablePolicy {
    /// The wait after a row's `failures`-th refusal (counting from 0).
    fn delay(&self, failures: i32) -> Duration {
        let doublings = failures.clamp(0, 20) as u32;
        self.first_delay.saturating_mul(1 << doublings).min(self.max_delay)
    }

    fn exhausted(&self, failures: i32) -> bool {
        i64::from(failures) >= i64::from(self.attempts)
    }
}

/// Where one row of a batch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Its own exchange.
    Own,
    /// The dead-letter exchange: its tries are used up.
    Park,
    /// Nowhere: its exchange is not there and cannot be declared; it counts
    /// as an unroutable try without a publish.
    Missing,
}

/// Exchanges this relay's connection has declared (or seen declared).
type Declared = HashSet<String>;

/// What a parked message carries besides its own headers.
fn park_headers(headers: &mut BTreeMap<String, String>, row: &outbox::OutboxRow) {
    use job_model::message::headers::{DLQ_REASON, ERROR};
    headers.insert(DLQ_REASON.to_owned(), parked::REASON.to_owned());
    headers.insert(ERROR.to_owned(), format!("unroutable after {} tries: no queue bound for it", row.failures));
    headers.insert(parked::ORIGINAL_EXCHANGE.to_owned(), row.message.exchange.clone());
    headers.insert(parked::ORIGINAL_ROUTING_KEY.to_owned(), row.message.routing_key.clone());
}

/// Headers of a message parked on the dead-letter exchange by the relay.
pub mod parked {
    /// The exchange it was meant for.
    pub const ORIGINAL_EXCHANGE: &str = "x-original-exchange";
    pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
    /// `x-dlq-reason` of a parked message.
    pub const REASON: &str = "unroutable";
}

/// Handovers waiting for the relay, at most; past that a handover is
/// dropped and its rows wait out their claim for a poll.
const HANDOVER_QUEUE: usize = 1024;

/// How long a busy relay lets a handover wait for the next ones; see
/// `OutboxRelay::publish_handed`.
const BUSY_LINGER: Duration = Duration::from_millis(1);

/// How much longer than its publish may take a handed-over row stays
/// claimed: time for the delete after the broker's confirm.
const CLAIM_MARGIN: Duration = Duration::from_secs(2);

/// Counters a service exposes in /metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub published: AtomicU64,
    /// Of `published`, rows handed over by their writer (no poll).
    pub handed_over: AtomicU64,
    /// Handovers dropped because the relay was that far behind; their rows
    /// went out after their claim ran out.
    pub handovers_dropped: AtomicU64,
    pub publish_failures: AtomicU64,
    /// Publishes the broker returned unroutable.
    pub unroutable: AtomicU64,
    /// Messages parked on the dead-letter exchange after their last try.
    pub parked: AtomicU64,
    pub connected: AtomicBool,
}

/// Publishes outbox rows. Several relays (one per replica) share the table
/// safely: each batch is locked with `FOR UPDATE SKIP LOCKED`.
#[derive(Clone)]
pub struct OutboxRelay {
    pool: PgPool,
    /// For the statements that settle handed-over rows.
    connections: ConnectionCache,
    config: RelayConfig,
    wake: Arc<Notify>,
    handed: mpsc::Sender<Vec<OutboxRow>>,
    /// Taken by the one [`OutboxRelay::run`].
    handovers: Arc<Mutex<mpsc::Receiver<Vec<OutboxRow>>>>,
    stats: Arc<RelayStats>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What the relay does next.
enum Work {
    /// Publish rows handed over.
    Handed(Vec<OutboxRow>),
    /// Poll the table.
    Sweep,
}

/// What publishing a set of rows came to, before the outbox is told.
struct Sent {
    /// Rows the broker confirmed (or that were parked on the dead-letter
    /// exchange): to delete.
    published: Vec<i64>,
    /// Rows the broker would not route: to hold back.
    deferred: Vec<Deferred>,
    /// A queue deleted under us: declare the topology again.
    redeclare: bool,
    /// The first refusal (a nack) of a row that is neither of the above.
    refused: Option<PublishError>,
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Publish(#[from] PublishError),
}

impl OutboxRelay {
    /// A relay over `pool`. Starts the task of a connection cache, so it
    /// must be called on a Tokio runtime.
    pub fn new(pool: PgPool, config: RelayConfig) -> Self {
        let (handed, handovers) = mpsc::channel(HANDOVER_QUEUE);
        OutboxRelay {
            connections: ConnectionCache::new(pool.clone(), 1),
            pool,
            config,
            wake: Arc::new(Notify::new()),
            handed,
            handovers: Arc::new(Mutex::new(handovers)),
            stats: Arc::default(),
        }
    }

    /// Call after committing outbox rows written without a claim, so they
    /// go out now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// How long a writer claims the outbox rows it will hand over: the
    /// longest a publish may take, and a margin. Past it, any relay's poll
    /// takes them (published twice at worst, if this one was that slow).
    pub fn claim(&self) -> Duration {
        self.config.publish_timeout + CLAIM_MARGIN
    }

    /// Publishes rows this process has just committed, claimed for
    /// [`claim`](Self::claim), without waiting for a poll. Never waits: if
    /// the relay is too far behind, the rows go out after their claim.
    pub fn hand_over(&self, rows: Vec<OutboxRow>) {
        if rows.is_empty() {
            return;
        }
        if self.handed.try_send(rows).is_err() {
            self.stats.handovers_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("outbox relay behind; a handover waits for its claim to run out");
        }
    }

    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled, reconnecting with backoff whenever
    /// the broker or the database fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut handovers = self.handovers.clone().lock_owned().await;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut session: Option<(Connection, Publisher, Declared)> = None;
        let mut sweep_now = true;
        while !shutdown.is_cancelled() {
            let Some((connection, publisher, declared)) = &mut session else {
                // Nothing can go out: what was handed over goes to the polls.
                self.release_handed(&mut handovers).await;
                match self.connect().await {
                    Ok(s) => {
                        tracing::info!(connection = %self.config.connection_name, "outbox relay connected to the broker");
                        self.stats.connected.store(true, Ordering::Relaxed);
                        session = Some(s);
                        sweep_now = true;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay cannot reach the broker; retrying");
                        backoff.wait(&shutdown).await;
                    }
                }
                continue;
            };
            let work = if sweep_now {
                Work::Sweep
            } else {
                let work = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    Some(rows) = handovers.recv() => Work::Handed(rows),
                    _ = self.wake.notified() => Work::Sweep,
                    _ = tokio::time::sleep(self.config.poll_interval) => Work::Sweep,
                };
                // Notice a connection that died while idle, so readiness
                // says so before the next publish finds out.
                if !connection.status().connected() {
                    tracing::warn!("outbox relay lost its broker connection while idle");
                    if let Work::Handed(rows) = work {
                        self.release(&rows).await;
                    }
                    session = None;
                    self.stats.connected.store(false, Ordering::Relaxed);
                    continue;
                }
                work
            };
            let outcome = match work {
                // A batch abandoned at shutdown rolls back: its rows stay for
                // another relay (published twice at worst, never lost).
                Work::Sweep => tokio::select! {
                    outcome = self.publish_batch(connection, publisher, declared) => outcome,
                    _ = shutdown.cancelled() => break,
                },
                // Bounded by the publish timeout, and finished even at
                // shutdown: abandoned, its rows would wait out their claim.
                Work::Handed(rows) => self.publish_handed(connection, publisher, declared, rows, &mut handovers).await,
            };
            match outcome {
                Ok(swept) => {
                    backoff.reset();
                    // A full poll may have left more behind it.
                    sweep_now = swept > 0;
                }
                Err(error) => {
                    self.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "outbox batch not wholly published; the rest stays in the outbox");
                    if matches!(&error, RelayError::Publish(e) if e.breaks_channel()) {
                        if let Some((connection, ..)) = session.take() {
                            let _ = connection.close(200, "reconnecting".into()).await;
                        }
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                    backoff.wait(&shutdown).await;
                    sweep_now = true;
                }
            }
        }
        self.release_handed(&mut handovers).await;
        if let Some((connection, ..)) = session {
            let _ = connection.close(200, "shutting down".into()).await;
        }
    }

    async fn connect(&self) -> lapin::Result<(Connection, Publisher, Declared)> {
        let connection = crate::connect(&self.config.amqp_url, &self.config.connection_name).await?;
        let publisher = Publisher::open(&connection, self.config.publish_timeout).await?;
        crate::topology::declare(&self.config.topology, &connection).await?;
        let declared = self.config.topology.exchange_names(None).into_iter().collect();
        Ok((connection, publisher, declared))
    }

    /// Makes sure every exchange the batch names exists before anything is
    /// published: publishing to a missing exchange is a channel error that
    /// would fail the whole batch, every time. Retry tiers are declared from
    /// their names (a tier deleted, or one this process has no policy for);
    /// an exchange outside the topology cannot be, and its rows are refused
    /// here like unroutable ones.
    async fn declare_destinations(
        &self,
        connection: &Connection,
        declared: &mut Declared,
        rows: &[outbox::OutboxRow],
    ) -> Result<(), PublishError> {
        let topology = &self.config.topology;
        for row in rows {
            let exchange = &row.message.exchange;
            if declared.contains(exchange) {
                continue;
            }
            if let Some(delay) = topology.retry_delay_of(exchange) {
                crate::topology::declare_retry_tier(topology, connection, delay).await?;
                declared.insert(exchange.clone());
            }
        }
        Ok(())
    }

    /// Polls the table: publishes one locked batch and deletes the rows the
    /// broker confirmed; rows it returned unroutable wait out their backoff
    /// (see [`UnroutablePolicy`]). Returns how many rows went out; an error
    /// if the channel failed or the broker refused (nacked) a message.
    async fn publish_batch(
        &self,
        connection: &Connection,
        publisher: &Publisher,
        declared: &mut Declared,
    ) -> Result<usize, RelayError> {
        let batch: LockedBatch = outbox::lock_batch(&self.pool, self.config.batch_size).await?;
        if batch.is_empty() {
            batch.complete(&[], &[]).await?;
            return Ok(0);
        }
        let sent = self.publish_rows(connection, publisher, declared, &batch.rows).await?;
        batch.complete(&sent.published, &sent.deferred).await?;
        self.after_settling(connection, declared, sent).await
    }

    /// Publishes rows handed over (`first`, and whatever else is waiting, up
    /// to a batch), then deletes the ones the broker confirmed and holds back
    /// the ones it would not route. Rows left over (a failed publish, a
    /// nack) go back to the polls at once. Returns 0: nothing was polled.
    async fn publish_handed(
        &self,
        connection: &Connection,
        publisher: &Publisher,
        declared: &mut Declared,
        first: Vec<OutboxRow>,
        handovers: &mut mpsc::Receiver<Vec<OutboxRow>>,
    ) -> Result<usize, RelayError> {
        let mut rows = first;
        let batch = self.config.batch_size.max(1) as usize;
        // Other handovers already waiting: rows are committed faster than
        // they go out one publish at a time. The next few are a moment
        // away, so wait for them and publish a batch as large as a poll's,
        // with fewer confirms per message. A lone handover goes at once.
        if gather(&mut rows, handovers, batch) > 0 && rows.len() < batch {
            tokio::time::sleep(BUSY_LINGER).await;
            gather(&mut rows, handovers, batch);
        }
        let sent = match self.publish_rows(connection, publisher, declared, &rows).await {
            Ok(sent) => sent,
            Err(error) => {
                self.release(&rows).await;
                return Err(error);
            }
        };
        let mut settled = self.connections.acquire().await?;
        let result = outbox::settle_handed(&mut settled, &sent.published, &sent.deferred).await;
        settled.keep_if_ok(result)?;
        self.stats.handed_over.fetch_add(sent.published.len() as u64, Ordering::Relaxed);
        if sent.refused.is_some() {
            let left: Vec<OutboxRow> = rows
                .into_iter()
                .filter(|r| !sent.published.contains(&r.id) && !sent.deferred.iter().any(|d| d.id == r.id))
                .collect();
            self.release(&left).await;
        }
        self.after_settling(connection, declared, sent).await.map(|_| 0)
    }

    /// Publishes `rows` and sorts out what the broker made of each; an error
    /// if the channel failed, when nothing can be said of any of them.
    async fn publish_rows(
        &self,
        connection: &Connection,
        publisher: &Publisher,
        declared: &mut Declared,
        rows: &[OutboxRow],
    ) -> Result<Sent, RelayError> {
        // Bounded like a publish: a polled batch's rows stay locked meanwhile.
        let timeout = self.config.publish_timeout;
        tokio::time::timeout(timeout, self.declare_destinations(connection, declared, rows))
            .await
            .map_err(|_| PublishError::TimedOut(timeout))??;
        let policy = self.config.unroutable;
        let dlq_exchange = self.config.topology.dlq_exchange();
        let routes: Vec<Route> = rows
            .iter()
            .map(|row| {
                if policy.exhausted(row.failures) {
                    Route::Park
                } else if declared.contains(&row.message.exchange) {
                    Route::Own
                } else {
                    Route::Missing
                }
            })
            .collect();
        let (mut spans, headers): (Vec<_>, Vec<_>) = rows
            .iter()
            .zip(&routes)
            .map(|(row, route)| {
                let (span, mut headers) =
                    crate::spans::producer_span(&row.message.headers, &row.message.exchange, &row.message.routing_key);
                if *route == Route::Park {
                    park_headers(&mut headers, row);
                }
                (span, headers)
            })
            .unzip();
        let outgoing: Vec<Outgoing<'_>> = rows
            .iter()
            .zip(&headers)
            .zip(&routes)
            .filter_map(|((row, headers), route)| {
                let (exchange, expiration) = match route {
                    Route::Own => (row.message.exchange.as_str(), row.message.expiration),
                    Route::Park => (dlq_exchange.as_str(), None),
                    Route::Missing => return None,
                };
                Some(Outgoing {
                    exchange,
                    routing_key: &row.message.routing_key,
                    payload: &row.message.payload,
                    headers,
                    expiration,
                    json: true,
                    mandatory: true,
                })
            })
            .collect();
        let mut confirmed = match publisher.publish_all(&outgoing).await {
            Ok(results) => results.into_iter(),
            Err(error) => {
                spans.iter_mut().for_each(|s| s.set_status(Status::error(error.to_string())));
                return Err(error.into());
            }
        };
        let mut published = Vec::with_capacity(rows.len());
        let mut deferred = Vec::new();
        let mut redeclare = false;
        let mut refused = None;
        for ((row, route), span) in rows.iter().zip(&routes).zip(&mut spans) {
            let result = match route {
                Route::Own | Route::Park => confirmed.next().expect("one result per message published"),
                Route::Missing => Err(PublishError::Unroutable {
                    exchange: row.message.exchange.clone(),
                    routing_key: row.message.routing_key.clone(),
                }),
            };
            match result {
                Ok(()) => {
                    if *route == Route::Park {
                        self.stats.parked.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            outbox_id = row.id,
                            exchange = %row.message.exchange,
                            routing_key = %row.message.routing_key,
                            tries = row.failures,
                            "outbox message was never routable; parked on the dead-letter exchange"
                        );
                    }
                    published.push(row.id);
                }
                Err(error @ PublishError::Unroutable { .. }) => {
                    span.set_status(Status::error(error.to_string()));
                    self.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                    let delay = policy.delay(row.failures);
                    tracing::warn!(outbox_id = row.id, %error, retry_in = ?delay, "outbox message unroutable; re-declaring the topology");
                    redeclare |= *route != Route::Missing;
                    deferred.push(Deferred { id: row.id, error: error.to_string(), delay });
                }
                Err(error) => {
                    span.set_status(Status::error(error.to_string()));
                    refused.get_or_insert(error);
                }
            }
        }
        Ok(Sent { published, deferred, redeclare, refused })
    }

    /// Counts what went out, re-declares the topology if a queue vanished,
    /// and reports a refusal; the outbox has been told already.
    async fn after_settling(
        &self,
        connection: &Connection,
        declared: &mut Declared,
        sent: Sent,
    ) -> Result<usize, RelayError> {
        let count = sent.published.len();
        self.stats.published.fetch_add(count as u64, Ordering::Relaxed);
        if sent.redeclare {
            // A queue deleted under us: declared again before the next try.
            crate::topology::declare(&self.config.topology, connection).await.map_err(PublishError::from)?;
            declared.retain(|e| self.config.topology.retry_delay_of(e).is_none());
        }
        match sent.refused {
            None => Ok(count),
            Some(error) => Err(error.into()),
        }
    }

    /// Gives handed-over rows that did not go out back to the polls. Best
    /// effort: if the database is away too, their claims run out instead.
    async fn release(&self, rows: &[OutboxRow]) {
        if rows.is_empty() {
            return;
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let released = match self.connections.acquire().await {
            Ok(mut connection) => {
                let result = outbox::release(&mut connection, &ids).await;
                connection.keep_if_ok(result)
            }
            Err(error) => Err(error),
        };
        if let Err(error) = released {
            tracing::warn!(%error, rows = ids.len(), "handed-over outbox rows not released; their claims will run out");
        }
    }

    /// Releases everything handed over and not yet taken.
    async fn release_handed(&self, handovers: &mut mpsc::Receiver<Vec<OutboxRow>>) {
        let mut rows = Vec::new();
        while let Ok(more) = handovers.try_recv() {
            rows.extend(more);
        }
        self.release(&rows).await;
    }
}

/// Adds the handovers waiting now to `rows`, up to about `batch` rows;
/// returns how many it took.
fn gather(rows: &mut Vec<OutboxRow>, handovers: &mut mpsc::Receiver<Vec<OutboxRow>>, batch: usize) -> usize {
    let mut taken = 0;
    while rows.len() < batch {
        match handovers.try_recv() {
            Ok(more) => rows.extend(more),
            Err(_) => break,
        }
        taken += 1;
    }
    taken
}
