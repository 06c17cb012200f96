//! The outbox table: messages committed with the rows that cause them, and
//! the relay's side (lock a batch, delete what the broker confirmed). The
//! relay itself, which talks to the broker, lives in the `broker` crate.
//!
//! Rows can also be handed over: the process that wrote them publishes
//! them itself right after its commit, with no poll between, and deletes
//! what the broker confirmed ([`settle_handed`]). The statements that write
//! such rows take a `claim`, and set `not_before` (the column a backoff
//! uses too) that far ahead, so relays polling the table keep off them
//! meanwhile. Should the writer die before its publish, or its publish
//! fail, any relay takes them once the claim runs out, or at once after
//! [`release`].

use std::collections::BTreeMap;
use std::time::Duration;

use job_model::OutboxMessage;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::{StoreError, StoreResult};

/// Adds messages to the outbox inside the caller's transaction, in one
/// statement however many there are.
pub async fn enqueue_all(tx: &mut Transaction<'_, Postgres>, messages: &[OutboxMessage]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let exchanges: Vec<String> = messages.iter().map(|m| m.exchange.clone()).collect();
    let keys: Vec<String> = messages.iter().map(|m| m.routing_key.clone()).collect();
    let payloads: Vec<Vec<u8>> = messages.iter().map(|m| m.payload.clone()).collect();
    let headers: Vec<serde_json::Value> =
        messages.iter().map(|m| serde_json::to_value(&m.headers).expect("a string map serialises")).collect();
    let expirations: Vec<Option<i64>> = messages.iter().map(|m| m.expiration.map(|d| d.as_millis() as i64)).collect();
    sqlx::query!(
        "INSERT INTO outbox (exchange, routing_key, payload, headers, expiration_ms) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::jsonb[], $5::int8[])",
        &exchanges,
        &keys,
        &payloads,
        &headers,
        &expirations as _,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds one message inside the caller's transaction.
pub async fn enqueue(tx: &mut Transaction<'_, Postgres>, message: &OutboxMessage) -> StoreResult<()> {
    enqueue_all(tx, std::slice::from_ref(message)).await
}

/// Messages not yet confirmed by the broker.
pub async fn backlog(pool: &PgPool) -> StoreResult<i64> {
    Ok(sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM outbox"#).fetch_one(pool).await?)
}

/// A message waiting in the outbox, with its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub message: OutboxMessage,
    /// How often the broker refused to route it so far.
    pub failures: i32,
}

impl OutboxRow {
    /// A row its writer hands over to its relay: just written, never refused.
    pub fn handed(id: i64, message: OutboxMessage) -> Self {
        OutboxRow { id, message, failures: 0 }
    }
}

/// A row the broker did not take, to be tried again after a backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub id: i64,
    pub error: String,
    /// Until the next try.
    pub delay: Duration,
}

/// Rows locked for publishing (`FOR UPDATE SKIP LOCKED`, so relays of
/// several replicas share the table), held until [`LockedBatch::complete`]
/// deletes what the broker confirmed. Dropped without completing, the lock
/// ends and the rows stay for the next relay.
pub struct LockedBatch {
    tx: Transaction<'static, Postgres>,
    pub rows: Vec<OutboxRow>,
}

/// Locks the oldest `limit` rows nobody else holds and no backoff holds back.
///
/// The same statement makes the batch's transaction commit asynchronously
/// (`set_config(.., true)`: this transaction only, no statement of its
/// own). Its commit need not wait for its WAL flush (about 2.5 ms on the
/// benchmark machine, which capped a relay's batches per second): were it
/// lost in a Postgres crash, the rows come back and are published again,
/// the duplicate that at-least-once publishing already allows and every
/// consumer recognises. Nothing a client was promised rests on it.
pub async fn lock_batch(pool: &PgPool, limit: i64) -> StoreResult<LockedBatch> {
    let mut tx = pool.begin().await?;
    let records = sqlx::query!(
        "WITH async_commit AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) \
         SELECT id, exchange, routing_key, payload, headers, expiration_ms, failures FROM outbox, async_commit \
         WHERE not_before IS NULL OR not_before <= now() \
         ORDER BY id LIMIT $1 FOR UPDATE OF outbox SKIP LOCKED",
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    let rows = records
        .into_iter()
        .map(|r| {
            let headers: BTreeMap<String, String> = serde_json::from_value(r.headers).map_err(|e| {
                StoreError::invariant(format!("outbox row {} has headers that are not strings: {e}", r.id))
            })?;
            let mut message = OutboxMessage::new(r.exchange, r.routing_key, r.payload, headers);
            message.expiration = r.expiration_ms.map(|ms| Duration::from_millis(ms.max(0) as u64));
            Ok(OutboxRow { id: r.id, message, failures: r.failures })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(LockedBatch { tx, rows })
}

impl LockedBatch {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Deletes the published rows, holds back the `deferred` ones for their
    /// delay, and releases the rest. Were this commit lost, the batch would
    /// be published again: the at-least-once half of the bargain (which is
    /// why it is committed asynchronously, see [`lock_batch`]).
    pub async fn complete(mut self, published: &[i64], deferred: &[Deferred]) -> StoreResult<()> {
        delete(&mut self.tx, published).await?;
        hold_back(&mut self.tx, deferred).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// After a handed-over publish: deletes the rows the broker confirmed and
/// holds back the ones it refused to route, each in a statement of its own
/// outside any transaction. The delete commits asynchronously for the same
/// reason as a batch's (see [`lock_batch`]).
pub async fn settle_handed(conn: &mut PgConnection, published: &[i64], deferred: &[Deferred]) -> StoreResult<()> {
    if !published.is_empty() {
        sqlx::query!(
            "WITH async_commit AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) \
             DELETE FROM outbox USING async_commit WHERE id = ANY($1)",
            published
        )
        .execute(&mut *conn)
        .await?;
    }
    hold_back(&mut *conn, deferred).await
}

/// Ends the claim on handed-over rows that were not published (the broker
/// away, a publish failed), so the next poll of any relay takes them
/// instead of waiting for the claim to run out. Rows another relay already
/// deferred keep their backoff.
pub async fn release(conn: &mut PgConnection, ids: &[i64]) -> StoreResult<()> {
    if !ids.is_empty() {
        sqlx::query!("UPDATE outbox SET not_before = NULL WHERE id = ANY($1) AND failures = 0", ids)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn delete(conn: &mut PgConnection, published: &[i64]) -> StoreResult<()> {
    if !published.is_empty() {
        sqlx::query!("DELETE FROM outbox WHERE id = ANY($1)", published).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn hold_back(conn: &mut PgConnection, deferred: &[Deferred]) -> StoreResult<()> {
    if deferred.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = deferred.iter().map(|d| d.id).collect();
    let errors: Vec<String> = deferred.iter().map(|d| d.error.clone()).collect();
    let delays: Vec<f64> = deferred.iter().map(|d| d.delay.as_secs_f64()).collect();
    sqlx::query!(
        "UPDATE outbox o SET failures = o.failures + 1, last_error = d.error, \
             not_before = now() + make_interval(secs => d.delay) \
         FROM UNNEST($1::int8[], $2::text[], $3::float8[]) AS d(id, error, delay) WHERE o.id = d.id",
        &ids,
        &errors,
        &delays
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Waits (polling) until the outbox is empty or `timeout` passes; used at
/// shutdown so the last committed messages leave with this process when
/// they can. Returns whether it emptied.
pub async fn wait_until_empty(pool: &PgPool, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if matches!(backlog(pool).await, Ok(0)) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
