//! Connection settings every service takes, as clap flags with the shared
//! environment variable names of DESIGN.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

/// Where Postgres is and how to trust it: all a one-shot tool such as
/// `docflow-migrate` needs.
#[derive(Debug, Clone, Args)]
pub struct PostgresArgs {
    /// Postgres connection URL. TLS follows its `sslmode` as with libpq:
    /// `disable`, `prefer` (default), `require`, `verify-ca`, `verify-full`.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/docflow")]
    pub database_url: String,

    /// PEM file of CA certificates to trust for Postgres, besides the
    /// platform's store. With it `sslmode=require` checks the chain as
    /// `verify-ca` does (libpq's rule); `verify-full` checks the host name
    /// too. An `sslrootcert` in DATABASE_URL wins over it.
    #[arg(long, env = "DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
}

impl PostgresArgs {
    /// A lazy pool: nothing is dialled until first use.
    pub async fn pool(&self, max_connections: u32, acquire_timeout: Duration) -> anyhow::Result<sqlx::PgPool> {
        use anyhow::Context;
        if let Some(ca) = &self.database_ca_file {
            readable(ca, "DATABASE_CA_FILE")?;
        }
        job_store::connect_with_ca_file(
            &self.database_url,
            self.database_ca_file.as_deref(),
            max_connections,
            acquire_timeout,
        )
        .await
        .context("invalid DATABASE_URL")
    }
}

/// The database settings of a long-running service.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub postgres: PostgresArgs,

    /// Most connections this process opens to Postgres (README, "Postgres
    /// connections", adds them up per deployment).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// How long a request waits for a database connection before it is
    /// answered 503, in milliseconds.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub database_acquire_timeout_ms: u64,

    /// Do not apply pending migrations at start: wait instead until
    /// `docflow-migrate` (a separate step, the Kubernetes Job) has applied
    /// every migration this build needs.
    #[arg(long, env = "SKIP_MIGRATIONS", default_value_t = false)]
    pub skip_migrations: bool,

    /// With SKIP_MIGRATIONS, how long start-up waits for the schema (and for
    /// Postgres itself) before the process exits non-zero. Keep it below the
    /// startup probe's budget (failureThreshold x periodSeconds).
    #[arg(long, env = "SCHEMA_WAIT_SECONDS", default_value_t = 90)]
    pub schema_wait_seconds: u64,

    /// The gauges `/metrics` reads from Postgres (DLQ size, outbox backlog,
    /// queue depths) are refreshed at most this often, in milliseconds;
    /// scrapes in between show the last values.
    #[arg(long, env = "METRICS_SAMPLE_INTERVAL_MS", default_value_t = 5_000)]
    pub metrics_sample_interval_ms: u64,
}

impl DatabaseArgs {
    pub fn metrics_throttle(&self) -> crate::metrics::SampleThrottle {
        crate::metrics::SampleThrottle::new(Duration::from_millis(self.metrics_sample_interval_ms))
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms)
    }

    /// Opens the pool and either applies pending migrations (sqlx takes an
    /// advisory lock, so replicas starting together are safe) or, with
    /// SKIP_MIGRATIONS, waits until someone else has.
    pub async fn connect(&self) -> anyhow::Result<sqlx::PgPool> {
        use anyhow::Context;
        let pool = self.postgres.pool(self.database_max_connections, self.acquire_timeout()).await?;
        if self.skip_migrations {
            crate::schema_wait::until_current(&pool, Duration::from_secs(self.schema_wait_seconds)).await?;
        } else {
            job_store::MIGRATOR.run(&pool).await.context("running database migrations")?;
        }
        Ok(pool)
    }
}

#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    /// Full AMQP URL; when set it wins over the RABBITMQ_* parts.
    /// `amqps://` connects over TLS; a `cacertfile` query parameter names a
    /// PEM file of CA certificates to trust besides the platform's store.
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: Option<String>,

    /// Connect over TLS (`amqps://`) when the URL is built from the
    /// RABBITMQ_* parts (set RABBITMQ_PORT too: RabbitMQ listens for TLS on
    /// 5671 by default).
    #[arg(long, env = "RABBITMQ_TLS", default_value_t = false)]
    pub rabbitmq_tls: bool,

    /// PEM file of CA certificates to trust for the broker, besides the
    /// platform's store; sets the URL's `cacertfile` unless it has one.
    #[arg(long, env = "AMQP_CA_FILE")]
    pub amqp_ca_file: Option<PathBuf>,

    #[arg(long, env = "RABBITMQ_HOST", default_value = "127.0.0.1")]
    pub rabbitmq_host: String,

    #[arg(long, env = "RABBITMQ_PORT", default_value_t = 5672)]
    pub rabbitmq_port: u16,

    #[arg(long, env = "RABBITMQ_USER", default_value = "guest")]
    pub rabbitmq_user: String,

    #[arg(long, env = "RABBITMQ_PASSWORD", default_value = "guest", hide_env_values = true)]
    pub rabbitmq_password: String,

    #[arg(long, env = "RABBITMQ_VHOST", default_value = "/")]
    pub rabbitmq_vhost: String,

    /// Prefix for every queue and exchange name (tests set a unique one).
    #[arg(long, env = "DOCFLOW_NAMESPACE", default_value = "")]
    pub namespace: String,

    /// The longest wait for the broker to confirm a publish, in
    /// milliseconds; past it the connection is treated as broken (a broker
    /// blocked by a memory or disk alarm confirms nothing).
    #[arg(long, env = "AMQP_PUBLISH_TIMEOUT_MS", default_value_t = 10_000)]
    pub publish_timeout_ms: u64,

    /// Publishes of one outbox message that the broker would not route (no
    /// queue bound, e.g. a retry tier deleted) before the relay parks it on
    /// the dead-letter exchange with reason `unroutable`. Each try waits
    /// twice as long as the last, from 1 s up to 60 s, and re-declares the
    /// topology first; the default gives up after about 4 minutes.
    #[arg(long, env = "OUTBOX_UNROUTABLE_ATTEMPTS", default_value_t = 8)]
    pub outbox_unroutable_attempts: u32,
}

impl AmqpArgs {
    pub fn url(&self) -> String {
        let url = match &self.amqp_url {
            Some(url) => url.clone(),
            None => self.url_from_parts(),
        };
        match &self.amqp_ca_file {
            Some(ca) => with_ca_file(url, ca),
            None => url,
        }
    }

    fn url_from_parts(&self) -> String {
        format!(
            "{}://{}:{}@{}:{}/{}",
            if self.rabbitmq_tls { "amqps" } else { "amqp" },
            encode(&self.rabbitmq_user),
            encode(&self.rabbitmq_password),
            self.rabbitmq_host,
            self.rabbitmq_port,
            encode(&self.rabbitmq_vhost)
        )
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms.max(1))
    }

    pub fn unroutable_policy(&self) -> broker::UnroutablePolicy {
        broker::UnroutablePolicy { attempts: self.outbox_unroutable_attempts.max(1), ..Default::default() }
    }

    pub fn topology(&self) -> job_model::Topology {
        job_model::Topology::new(self.namespace.clone())
    }
}

/// Adds `cacertfile` to an AMQP URL that has none (the URL's own wins).
fn with_ca_file(url: String, ca: &Path) -> String {
    if broker::ca_file(&url).is_some() {
        return url;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    let value: String = url::form_urlencoded::byte_serialize(ca.to_string_lossy().as_bytes()).collect();
    format!("{url}{separator}cacertfile={value}")
}

/// A CA file named by a setting must be readable at start: a typo should
/// stop the service with the setting's name, not fail every handshake later.
fn readable(path: &Path, setting: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let pem = std::fs::read_to_string(path).with_context(|| format!("{setting}: cannot read {}", path.display()))?;
    anyhow::ensure!(
        pem.contains("-----BEGIN CERTIFICATE-----"),
        "{setting}: {} holds no PEM certificate",
        path.display()
    );
    Ok(())
}

/// Percent-encodes a URL userinfo or path segment (the default vhost "/" is "%2f").
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        amqp: AmqpArgs,
    }

    #[test]
    fn amqp_url_is_built_from_parts_unless_given() {
        let cli = Cli::parse_from(["x", "--rabbitmq-password", "p@ss"]);
        assert_eq!(cli.amqp.url(), "amqp://guest:p%40ss@127.0.0.1:5672/%2f");
        let cli = Cli::parse_from(["x", "--amqp-url", "amqp://a:b@h:1/v"]);
        assert_eq!(cli.amqp.url(), "amqp://a:b@h:1/v");
    }

    #[test]
    fn tls_and_the_ca_file_reach_the_url() {
        let cli =
            Cli::parse_from(["x", "--rabbitmq-tls", "--rabbitmq-port", "5671", "--amqp-ca-file", "/etc/ca one.pem"]);
        assert_eq!(cli.amqp.url(), "amqps://guest:guest@127.0.0.1:5671/%2f?cacertfile=%2Fetc%2Fca+one.pem");
        assert_eq!(broker::ca_file(&cli.amqp.url()), Some("/etc/ca one.pem".into()));
        let cli = Cli::parse_from(["x", "--amqp-url", "amqps://a:b@h:1/v?heartbeat=5", "--amqp-ca-file", "/c.pem"]);
        assert_eq!(cli.amqp.url(), "amqps://a:b@h:1/v?heartbeat=5&cacertfile=%2Fc.pem");
        // The URL's own CA file wins.
        let cli =
            Cli::parse_from(["x", "--amqp-url", "amqps://a:b@h:1/v?cacertfile=/u.pem", "--amqp-ca-file", "/c.pem"]);
        assert_eq!(cli.amqp.url(), "amqps://a:b@h:1/v?cacertfile=/u.pem");
    }

    #[test]
    fn a_ca_file_setting_must_name_a_readable_pem_file() {
        let error = readable(Path::new("/nonexistent/ca.pem"), "DATABASE_CA_FILE").unwrap_err();
        assert!(format!("{error:#}").starts_with("DATABASE_CA_FILE: cannot read /nonexistent/ca.pem"), "{error:#}");
        let error = readable(Path::new("Cargo.toml"), "AMQP_CA_FILE").unwrap_err();
        assert!(error.to_string().contains("holds no PEM certificate"), "{error}");
    }
}
