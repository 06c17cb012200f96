//! Connection settings every service takes, as clap flags with the shared
//! environment variable names of DESIGN.md.

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/docflow")]
    pub database_url: String,

    /// Most connections this process opens to Postgres.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// How long a request waits for a database connection before it is
    /// answered 503, in milliseconds.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub database_acquire_timeout_ms: u64,

    /// Do not run pending migrations at start (for deployments that migrate
    /// in a separate step).
    #[arg(long, env = "SKIP_MIGRATIONS", default_value_t = false)]
    pub skip_migrations: bool,

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

    /// Opens the pool and, unless told not to, applies pending migrations
    /// (sqlx takes an advisory lock, so replicas starting together are safe).
    pub async fn connect(&self) -> anyhow::Result<sqlx::PgPool> {
        use anyhow::Context;
        let pool = job_store::connect(&self.database_url, self.database_max_connections, self.acquire_timeout())
            .await
            .context("invalid DATABASE_URL")?;
        if !self.skip_migrations {
            job_store::MIGRATOR.run(&pool).await.context("running database migrations")?;
        }
        Ok(pool)
    }
}

#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    /// Full AMQP URL; when set it wins over the RABBITMQ_* parts.
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: Option<String>,

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
        if let Some(url) = &self.amqp_url {
            return url.clone();
        }
        format!(
            "amqp://{}:{}@{}:{}/{}",
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
}
