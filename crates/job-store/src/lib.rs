//! Every SQL statement of docflow's job tables, in one place. Queries are
//! `sqlx::query!`-checked against the schema at build time; the offline
//! data in `.sqlx/` (workspace root) lets the build run without a database,
//! and `scripts/sqlx-prepare.sh` regenerates it (CI checks it is current).
//! Every call returns [`StoreError`], whose variant says what to do next.

pub mod connections;
pub mod console_sessions;
pub mod dlq;
pub mod error;
pub mod jobs;
pub mod lifecycle;
pub mod outbox;
pub mod results;
pub mod rollups;
mod row;
pub mod schema;
pub mod search;
pub mod stats;
pub mod tickets;

use std::path::Path;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

pub use connections::{CachedConnection, ConnectionCache};
pub use error::{StoreError, StoreResult};
pub use jobs::{DedupPolicy, JobFilter, SubmitOutcome};
pub use lifecycle::{AttemptRecord, ClaimOutcome, Claimed};

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A pooled connection idle this long is pinged before it is handed out.
pub(crate) const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens a pool. `acquire_timeout` bounds how long a request waits for a
/// connection when Postgres is away: the API answers 503 after it.
pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    connect_with_ca_file(url, None, max_connections, acquire_timeout).await
}

/// [`connect`], trusting the certificates in `ca_file` too (see
/// [`connect_options`]).
pub async fn connect_with_ca_file(
    url: &str,
    ca_file: Option<&Path>,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    let options = connect_options(url, ca_file)?;
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

/// Connect options from a libpq-style URL. TLS follows the URL's `sslmode`
/// as libpq does: `disable`; `prefer` (the default: TLS when the server
/// offers it, certificate not checked); `require` (TLS or fail); `verify-ca`
/// (the chain must lead to a trusted root); `verify-full` (that, and the
/// host name must match the certificate). Trusted roots are the platform's
/// store plus the PEM bundle named by the URL's `sslrootcert`, or else by
/// `ca_file` (`DATABASE_CA_FILE`), or else by `PGSSLROOTCERT`. As in libpq,
/// `require` with a root file given checks the chain like `verify-ca`
/// (<https://www.postgresql.org/docs/current/libpq-ssl.html>): a CA file
/// is given to be used.
pub fn connect_options(url: &str, ca_file: Option<&Path>) -> Result<PgConnectOptions, sqlx::Error> {
    let mut options: PgConnectOptions = url.parse()?;
    let url_names_root = names_root_cert(url);
    if let Some(ca) = ca_file
        && !url_names_root
    {
        options = options.ssl_root_cert(ca);
    }
    let root_given = url_names_root || ca_file.is_some() || std::env::var_os("PGSSLROOTCERT").is_some();
    if root_given && matches!(options.get_ssl_mode(), PgSslMode::Require) {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    Ok(options)
}

/// Whether the URL's query sets `sslrootcert` itself (it wins over the
/// setting, as the more specific of the two).
fn names_root_cert(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("sslrootcert=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_root_cert_wins_over_the_setting() {
        assert!(names_root_cert("postgres://h/db?sslmode=verify-full&sslrootcert=/a.pem"));
        assert!(!names_root_cert("postgres://h/db?sslmode=verify-full"));
        assert!(!names_root_cert("postgres://h/db"));
        // Which file is used shows only in a handshake (tests/it/tls.rs).
        let options = connect_options("postgres://h/db?sslmode=verify-full", Some(Path::new("/b.pem"))).unwrap();
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn require_with_a_root_file_checks_the_chain_as_libpq_does() {
        let mode = |url: &str, ca: Option<&str>| connect_options(url, ca.map(Path::new)).unwrap().get_ssl_mode();
        assert!(matches!(mode("postgres://h/db?sslmode=require", Some("/ca.pem")), PgSslMode::VerifyCa));
        assert!(matches!(mode("postgres://h/db?sslmode=require&sslrootcert=/ca.pem", None), PgSslMode::VerifyCa));
        if std::env::var_os("PGSSLROOTCERT").is_none() {
            assert!(matches!(mode("postgres://h/db?sslmode=require", None), PgSslMode::Require));
        }
        assert!(matches!(mode("postgres://h/db?sslmode=prefer", Some("/ca.pem")), PgSslMode::Prefer));
    }
}
