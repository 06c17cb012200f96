//! The connection cache: a connection whose statement completed is reused
//! as it is; anything doubtful (a failed or cancelled statement, a long
//! idle, a dead backend) goes back through the pool, which tests it.

use std::time::Duration;

use job_store::{ConnectionCache, StoreError};
use sqlx::PgConnection;
use test_support::TestDb;

async fn backend(connection: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(connection).await.unwrap()
}

async fn cache_on(db: &TestDb, max_connections: u32, capacity: usize) -> (sqlx::PgPool, ConnectionCache) {
    let pool = job_store::connect(&db.url, max_connections, Duration::from_secs(5)).await.unwrap();
    (pool.clone(), ConnectionCache::new(pool, capacity))
}

#[tokio::test]
async fn a_kept_connection_is_reused_without_going_back_to_the_pool() {
    let db = TestDb::new().await;
    let (pool, cache) = cache_on(&db, 8, 4).await;

    let mut first = cache.acquire().await.unwrap();
    let pid = backend(&mut first).await;
    first.keep();
    // Still checked out of the pool, so never released (and pinged) there.
    assert_eq!((cache.idle(), pool.size(), pool.num_idle()), (1, 1, 0));

    let mut again = cache.acquire().await.unwrap();
    assert_eq!(backend(&mut again).await, pid, "the same backend serves the next statement");
    assert_eq!(cache.idle(), 0, "a connection in use is not in the cache");
    again.keep();
    assert_eq!(cache.idle(), 1);
}

#[tokio::test]
async fn a_connection_not_kept_goes_back_to_the_pool() {
    let db = TestDb::new().await;
    let (pool, cache) = cache_on(&db, 8, 4).await;

    let mut connection = cache.acquire().await.unwrap();
    let failed = sqlx::query("SELECT 1/0").execute(&mut *connection).await.map_err(StoreError::from);
    assert!(connection.keep_if_ok(failed).is_err());
    assert_eq!(cache.idle(), 0, "a connection whose statement failed is not kept");
    test_support::eventually(Duration::from_secs(5), "the pool has the connection back", || async {
        (pool.num_idle() == 1).then_some(())
    })
    .await;

    let mut next = cache.acquire().await.unwrap();
    assert_eq!(sqlx::query_scalar::<_, i32>("SELECT 7").fetch_one(&mut *next).await.unwrap(), 7);
}

#[tokio::test]
async fn a_statement_cancelled_midway_leaves_nothing_for_the_next_one_to_read() {
    // The driver property the cache relies on: before each statement, sqlx
    // reads whatever the last one left unread, up to its ReadyForQuery. So
    // even a connection kept against the rules (after a cancelled
    // statement) answers the next statement with that statement's rows.
    let db = TestDb::new().await;
    let (_pool, cache) = cache_on(&db, 4, 2).await;

    let mut connection = cache.acquire().await.unwrap();
    let pid = backend(&mut connection).await;
    let slow = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.5)").fetch_one(&mut *connection);
    assert!(tokio::time::timeout(Duration::from_millis(50), slow).await.is_err(), "cancelled mid-statement");
    connection.keep();

    let mut next = cache.acquire().await.unwrap();
    assert_eq!(backend(&mut next).await, pid, "the same connection");
    assert_eq!(sqlx::query_scalar::<_, i32>("SELECT 42").fetch_one(&mut *next).await.unwrap(), 42);
}

#[tokio::test]
async fn the_cache_never_holds_more_than_half_the_pool() {
    let db = TestDb::new().await;
    let (_pool, cache) = cache_on(&db, 1, 4).await;
    assert_eq!(cache.capacity(), 0);
    let (_pool, cache) = cache_on(&db, 5, 4).await;
    assert_eq!(cache.capacity(), 2);
}

#[tokio::test]
async fn a_connection_idle_in_the_cache_too_long_is_tested_by_the_pool() {
    let db = TestDb::new().await;
    let (pool, cache) = cache_on(&db, 8, 4).await;

    let mut connection = cache.acquire().await.unwrap();
    let pid = backend(&mut connection).await;
    connection.keep();
    // The server ends that backend (a restart, a failover, an idle timeout).
    let terminated: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&db.pool).await.unwrap();
    assert!(terminated);
    // Past the idle limit (1 s), the cache hands it to the pool, whose ping
    // finds it dead; the caller gets a live connection.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut next = cache.acquire().await.unwrap();
    assert_ne!(backend(&mut next).await, pid);
    drop(next);
    test_support::eventually(Duration::from_secs(5), "the dead connection is closed", || async {
        (pool.size() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_quiet_cache_gives_its_connections_back_to_the_pool() {
    let db = TestDb::new().await;
    let (pool, cache) = cache_on(&db, 8, 4).await;
    let connection = cache.acquire().await.unwrap();
    connection.keep();
    assert_eq!((cache.idle(), pool.num_idle()), (1, 0));
    // Nobody asks the cache again; its connection is not kept from the
    // pool's other callers for long.
    test_support::eventually(Duration::from_secs(10), "the connection is back in the pool", || async {
        (cache.idle() == 0 && pool.num_idle() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_cache_keeps_no_more_than_its_capacity() {
    let db = TestDb::new().await;
    let (pool, cache) = cache_on(&db, 8, 2).await;
    let held = [cache.acquire().await.unwrap(), cache.acquire().await.unwrap(), cache.acquire().await.unwrap()];
    for connection in held {
        connection.keep();
    }
    assert_eq!(cache.idle(), 2);
    // (The idle task may give the other two back too, if this runs slowly.)
    test_support::eventually(Duration::from_secs(5), "the third is back in the pool", || async {
        (pool.num_idle() >= 1).then_some(())
    })
    .await;

    // Dropping the cache gives its connections back too.
    drop(cache);
    test_support::eventually(Duration::from_secs(5), "all back in the pool", || async {
        (pool.num_idle() == 3).then_some(())
    })
    .await;
}
