//! Every SQL statement of docflow's job tables, in one place. Queries are
//! `sqlx::query!`-checked against the schema at build time; the offline
//! data in `.sqlx/` (workspace root) lets the build run without a database,
//! and `scripts/sqlx-prepare.sh` regenerates it (CI checks it is current).
//! Every call returns [`StoreError`], whose variant says what to do next.

pub mod dlq;
pub mod error;
pub mod jobs;
pub mod lifecycle;
pub mod outbox;
pub mod results;
pub mod rollups;
mod row;
pub mod search;
pub mod stats;
pub mod tickets;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use error::{StoreError, StoreResult};
pub use jobs::{DedupPolicy, JobFilter, SubmitOutcome};
pub use lifecycle::{AttemptRecord, ClaimOutcome, Claimed};

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A pooled connection idle this long is pinged before it is handed out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens a pool. `acquire_timeout` bounds how long a request waits for a
/// connection when Postgres is away: the API answers 503 after it.
pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    // Lazy: a service starts (and answers /healthz) while Postgres is still
    // coming up; requests get 503 until it is reachable.
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        // sqlx pings a pooled connection on every acquire by default: one
        // extra round trip per statement or transaction, 9.5 of a job's
        // 26.7 round trips (BENCHMARKS.md, "Per-job counts"). A connection
        // in steady use proves itself by being used; one that sat idle (where
        // a restarted server or a cut network shows up) is still pinged, and
        // a failed ping makes the pool open a fresh connection instead.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}
