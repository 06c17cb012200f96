//! Test helpers shared by every crate's integration tests.
//!
//! Each test gets its own world: a fresh, migrated database and a unique
//! queue namespace, both removed when the guard drops, so tests run in
//! parallel against the one local Postgres and RabbitMQ and leave nothing
//! behind. Tests that cannot reach those services fail; they never skip.

pub mod blob_servers;
pub mod hostile;
mod otlp;
mod pki;
mod private_postgres;
mod private_rabbitmq;
mod private_server;
pub mod process;
mod proxy;
mod tls_proxy;

use std::time::Duration;

use job_model::{RetryPolicy, Topology};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use pki::{ServerCert, TestCa};
pub use private_postgres::PrivatePostgres;
pub use private_rabbitmq::PrivateRabbitMq;
pub use proxy::TcpProxy;
pub use tls_proxy::TlsProxy;

/// Admin connection for creating and dropping test databases.
pub fn admin_database_url() -> String {
    std::env::var("TEST_ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A short unique suffix for database names and namespaces.
pub fn unique_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A freshly created database, migrated unless made [`TestDb::unmigrated`],
/// dropped when this guard drops.
#[derive(Debug)]
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    pub url: String,
    /// The server's admin URL, which created the database and drops it.
    admin_url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::new_on(&admin_database_url()).await
    }

    /// A fresh, migrated database on the server of `admin_url` (a test's
    /// own [`PrivatePostgres`]) instead of the shared one.
    pub async fn new_on(admin_url: &str) -> TestDb {
        let db = TestDb::unmigrated_on(admin_url).await;
        job_store::MIGRATOR.run(&db.pool).await.expect("migrations apply to a fresh database");
        db
    }

    /// A freshly created, empty database (no migrations applied).
    pub async fn unmigrated() -> TestDb {
        TestDb::unmigrated_on(&admin_database_url()).await
    }

    async fn unmigrated_on(admin_url: &str) -> TestDb {
        let name = format!("docflow_test_{}", unique_suffix());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await
            .expect("tests need Postgres on 127.0.0.1:5432 (see README)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
        admin.close().await;
        let url = database_url_for(admin_url, &name);
        let pool = PgPoolOptions::new().max_connections(5).connect(&url).await.unwrap();
        TestDb { pool, name, url, admin_url: admin_url.to_owned() }
    }

    /// The database URL, with host and port replaced (to go through a proxy).
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        format!("postgres://postgres@{addr}/{}", self.name)
    }
}

/// `admin_url` with its database replaced by `name` (any query kept).
fn database_url_for(admin_url: &str, name: &str) -> String {
    let (url, query) = admin_url.split_once('?').map_or((admin_url, None), |(u, q)| (u, Some(q)));
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // The pool's sockets belong to the test's runtime, which this drop may
        // be blocking, so they are not touched here: FORCE ends every session.
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        run_detached(async move {
            if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&admin_url).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&admin)
                    .await;
                admin.close().await;
            }
        });
    }
}

/// A unique namespace on the shared broker. Queues and exchanges declared
/// under it are deleted when this guard drops (quorum queues never
/// auto-delete, and leftovers slow the broker for every later run).
#[derive(Debug)]
pub struct TestBroker {
    pub namespace: String,
    pub topology: Topology,
    pub amqp_url: String,
    /// Retry tiers to delete too, for tests that declared them.
    pub retry_policy: Option<RetryPolicy>,
}

impl TestBroker {
    pub fn new() -> TestBroker {
        let namespace = format!("test-{}", unique_suffix());
        TestBroker { topology: Topology::new(namespace.clone()), namespace, amqp_url: amqp_url(), retry_policy: None }
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.amqp_url, ConnectionProperties::default())
            .await
            .expect("tests need RabbitMQ on 127.0.0.1:5672 (see README)")
    }

    /// Declares the namespace's topology, for tests that read queues before a
    /// service has declared them.
    pub async fn declare(&self) -> Connection {
        let conn = self.connect().await;
        broker::topology::declare(&self.topology, &conn).await.unwrap();
        conn
    }

    /// Messages ready on a queue, counted by a passive declare.
    pub async fn ready_count(&self, queue: &str) -> u32 {
        let conn = self.connect().await;
        let channel = conn.create_channel().await.unwrap();
        let q = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions { passive: true, ..Default::default() },
                Default::default(),
            )
            .await
            .unwrap();
        let _ = conn.close(200, "done".into()).await;
        q.message_count()
    }

    /// Takes every message now on `queue` (acking them), waiting up to
    /// `settle` for the queue to stay empty.
    pub async fn drain(&self, queue: &str, settle: Duration) -> Vec<lapin::message::Delivery> {
        let conn = self.connect().await;
        let channel = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + settle;
        loop {
            match channel.basic_get(queue.into(), Default::default()).await.unwrap() {
                Some(msg) => {
                    msg.delivery.acker.ack(Default::default()).await.unwrap();
                    out.push(msg.delivery);
                }
                None if tokio::time::Instant::now() >= deadline => break,
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let _ = conn.close(200, "done".into()).await;
        out
    }
}

impl Default for TestBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let topology = self.topology.clone();
        let url = self.amqp_url.clone();
        let policy = self.retry_policy.clone();
        run_detached(async move {
            let Ok(conn) = Connection::connect(&url, ConnectionProperties::default()).await else { return };
            for queue in topology.queue_names(policy.as_ref()) {
                // A channel closes on the first error (e.g. a queue never
                // declared), so each delete gets its own.
                if let Ok(ch) = conn.create_channel().await {
                    let _ = ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
                    let _ = ch.close(200, "done".into()).await;
                }
            }
            for exchange in topology.exchange_names(policy.as_ref()) {
                if let Ok(ch) = conn.create_channel().await {
                    let _ = ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
                    let _ = ch.close(200, "done".into()).await;
                }
            }
            let _ = conn.close(200, "done".into()).await;
        });
    }
}

/// Runs async clean-up from a `Drop`, which may itself run inside a runtime:
/// a separate thread with its own runtime, joined so the work is done before
/// the test process exits.
fn run_detached<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    let handle = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), f).await;
        });
    });
    let _ = handle.join();
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
