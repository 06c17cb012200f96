//! Connections kept out of the pool between uses, for a hot path that runs
//! one statement at a time (the worker's claims, duplicate lookups and
//! outcome writes).
//!
//! sqlx tests every connection going back to its pool with a ping, a Sync
//! round trip, and that cannot be turned off (`PoolConnection` drop: it
//! also drains what a cancelled query left unread). A job that takes a
//! connection from the pool for each of its statements pays one such round
//! trip per statement: 3.4 of the worker's 8.1 round trips per job, 1.1 of
//! ingest's 6.3 (BENCHMARKS.md, lever 4). A connection handed back here
//! after a statement that succeeded stays checked out, and the next
//! statement reuses it as it is: sqlx's Postgres driver reads up to the
//! server's ReadyForQuery before every statement anyway, so nothing is left
//! pending on a connection whose last statement completed.
//!
//! Anything else goes back through the pool as before: a connection whose
//! statement failed or was cancelled (the pool's ping drains it, or closes
//! it if it is broken), one idle here for [`crate::PING_IF_IDLE_FOR`] or
//! longer (a restarted server or a cut network shows up there, and the pool
//! pings it; a task gives those back even when nobody asks the cache), and
//! those beyond the cache's capacity. The cache holds at most half the
//! pool, so that the callers that still acquire from the pool (the relay,
//! the reaper, heartbeats, health checks) always find connections.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::error::StoreResult;

/// A pool's connections, kept between statements; cheap to clone.
#[derive(Clone)]
pub struct ConnectionCache {
    pool: PgPool,
    shared: Arc<Shared>,
}

/// What the cache and the connections out of it share.
struct Shared {
    idle: Mutex<Vec<Idle>>,
    capacity: usize,
}

struct Idle {
    connection: PoolConnection<Postgres>,
    since: Instant,
}

impl ConnectionCache {
    /// A cache keeping up to `capacity` of `pool`'s connections, and never
    /// more than half of the pool's maximum.
    ///
    /// Starts a task (on the current Tokio runtime) that gives connections
    /// idle in the cache back to the pool; it ends with the cache.
    pub fn new(pool: PgPool, capacity: usize) -> Self {
        let half_the_pool = (pool.options().get_max_connections() / 2) as usize;
        let shared = Arc::new(Shared { idle: Mutex::default(), capacity: capacity.min(half_the_pool) });
        tokio::spawn(give_back_idle(Arc::downgrade(&shared)));
        ConnectionCache { pool, shared }
    }

    /// How many connections the cache keeps at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// How many connections wait in the cache now.
    pub fn idle(&self) -> usize {
        self.shared.lock().len()
    }

    /// The connection used last, if one is waiting and fresh; else one from
    /// the pool (which pings it first if it sat idle there).
    pub async fn acquire(&self) -> StoreResult<CachedConnection> {
        let (fresh, stale) = {
            let mut idle = self.shared.lock();
            let stale = drain_stale(&mut idle);
            (idle.pop(), stale)
        };
        // Back to the pool, whose release ping tests them.
        drop(stale);
        let connection = match fresh {
            Some(idle) => idle.connection,
            None => self.pool.acquire().await?,
        };
        Ok(CachedConnection { connection: Some(connection), home: Arc::downgrade(&self.shared) })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // The list's operations cannot panic halfway: a poisoned lock still
        // holds a consistent list.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Takes out the connections idle for [`crate::PING_IF_IDLE_FOR`] or
/// longer: the oldest, at the front of the list.
fn drain_stale(idle: &mut Vec<Idle>) -> Vec<Idle> {
    let stale = idle.iter().take_while(|i| i.since.elapsed() >= crate::PING_IF_IDLE_FOR).count();
    idle.drain(..stale).collect()
}

/// Every [`crate::PING_IF_IDLE_FOR`], gives the pool back the connections
/// that waited here that long, so that a quiet cache does not keep them
/// from the pool's other callers (a worker's heartbeats while every slot
/// runs a long job): none waits in the cache much longer than twice that.
async fn give_back_idle(shared: Weak<Shared>) {
    let mut every = tokio::time::interval(crate::PING_IF_IDLE_FOR);
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        let stale = drain_stale(&mut shared.lock());
        drop(shared);
        drop(stale);
    }
}

/// A connection out of a [`ConnectionCache`]. Dropped, it goes back to the
/// pool (with the pool's ping); [`keep`](Self::keep) returns it to the
/// cache instead.
pub struct CachedConnection {
    connection: Option<PoolConnection<Postgres>>,
    home: Weak<Shared>,
}

impl CachedConnection {
    /// Returns the connection to its cache. Call it only after a statement
    /// on it completed: a connection whose statement failed or was
    /// cancelled is dropped instead, so that the pool tests it.
    pub fn keep(mut self) {
        let (Some(connection), Some(home)) = (self.connection.take(), self.home.upgrade()) else {
            return;
        };
        let mut idle = home.lock();
        if idle.len() < home.capacity {
            idle.push(Idle { connection, since: Instant::now() });
            return;
        }
        drop(idle);
        // The cache is full: back to the pool.
        drop(connection);
    }

    /// Keeps the connection if `result` is a success, and passes it on.
    pub fn keep_if_ok<T, E>(self, result: Result<T, E>) -> Result<T, E> {
        if result.is_ok() {
            self.keep();
        }
        result
    }
}

impl Deref for CachedConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.connection.as_ref().expect("present until kept or dropped")
    }
}

impl DerefMut for CachedConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.connection.as_mut().expect("present until kept or dropped")
    }
}
