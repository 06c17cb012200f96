//! Every setting of metrics-tracker, as a flag with an environment variable.

use std::time::Duration;

use clap::{Args, Parser};
pub use metrics_core::config::{AlertArgs, STAGES, SlaArgs};
use service_common::config::{AmqpArgs, DatabaseArgs};
use telemetry::LogArgs;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "metrics-tracker",
    version,
    about = "docflow metrics-tracker: execution events in, rollups, reports, alerts and /metrics out"
)]
pub struct Config {
    /// Address the HTTP server binds to (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8082")]
    pub listen_addr: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Admin tokens, `token:role` (role `read` or `write`; either may read),
    /// comma-separated. Every /api route needs one as a Bearer token.
    #[arg(long, env = "ADMIN_TOKENS", value_delimiter = ',', hide_env_values = true)]
    pub admin_tokens: Vec<String>,

    /// Serve the API without tokens. Only for local development.
    #[arg(long, env = "INSECURE_NO_AUTH", default_value_t = false)]
    pub insecure_no_auth: bool,

    #[command(flatten)]
    pub consumer: ConsumerArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    #[command(flatten)]
    pub sla: SlaArgs,

    #[command(flatten)]
    pub alerts: AlertArgs,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub http_workers: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct ConsumerArgs {
    /// Unacknowledged events the broker may hand this consumer. Must be at
    /// least the batch size, or batches never fill; small enough that a
    /// crash redelivers little (AMQP 0-9-1 basic.qos, per consumer).
    #[arg(long, env = "METRICS_PREFETCH", default_value_t = 256)]
    pub prefetch: u16,

    /// Most events written in one transaction (and acked together after it).
    #[arg(long, env = "METRICS_BATCH_SIZE", default_value_t = 128)]
    pub batch_size: usize,

    /// How long a batch waits for more events after its first one, in ms.
    #[arg(long, env = "METRICS_BATCH_LINGER_MS", default_value_t = 50)]
    pub batch_linger_ms: u64,
}

impl ConsumerArgs {
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }
}

#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// How long raw execution traces (every attempt and stage) are kept, in hours.
    #[arg(long, env = "RAW_RETENTION_HOURS", default_value_t = 168)]
    pub raw_retention_hours: u32,

    /// How long per-minute rollups are kept, in days; reports reach this far back.
    #[arg(long, env = "ROLLUP_RETENTION_DAYS", default_value_t = 90)]
    pub rollup_retention_days: u32,

    /// How often the retention sweep runs, in seconds.
    #[arg(long, env = "RETENTION_INTERVAL_SECONDS", default_value_t = 300)]
    pub retention_interval_seconds: u64,

    /// Rows one DELETE removes; the sweep loops until nothing old is left, so
    /// no statement holds locks or bloats WAL for long.
    #[arg(long, env = "RETENTION_BATCH_SIZE", default_value_t = 5000)]
    pub retention_batch_size: i64,
}

impl Config {
    /// Checks what clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.consumer.batch_size >= 1, "METRICS_BATCH_SIZE must be at least 1");
        anyhow::ensure!(
            usize::from(self.consumer.prefetch) >= self.consumer.batch_size,
            "METRICS_PREFETCH ({}) must be at least METRICS_BATCH_SIZE ({})",
            self.consumer.prefetch,
            self.consumer.batch_size
        );
        anyhow::ensure!(self.retention.raw_retention_hours >= 1, "RAW_RETENTION_HOURS must be at least 1");
        anyhow::ensure!(self.retention.rollup_retention_days >= 1, "ROLLUP_RETENTION_DAYS must be at least 1");
        anyhow::ensure!(self.retention.retention_batch_size >= 1, "RETENTION_BATCH_SIZE must be at least 1");
        anyhow::ensure!(self.alerts.alert_window_minutes >= 1, "ALERT_WINDOW_MINUTES must be at least 1");
        anyhow::ensure!(
            (0.0..=100.0).contains(&self.sla.sla_success_rate_pct),
            "SLA_SUCCESS_RATE_PCT is a percentage (0 to 100)"
        );
        Ok(())
    }

    /// The longest report window: as far back as rollups are kept.
    pub fn max_report_hours(&self) -> u32 {
        self.retention.rollup_retention_days.saturating_mul(24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_targets() {
        let config = Config::parse_from(["metrics-tracker"]);
        assert_eq!(config.sla.stage_target_ms("extraction"), Some(500.0));
        assert_eq!(config.sla.stage_target_ms("validation"), Some(50.0));
        assert_eq!(config.sla.stage_target_ms("ocr"), None);
        assert_eq!(config.sla.sla_total_ms, 1500.0);
        assert_eq!(config.alerts.alert_queue_depth, 1000);
        assert_eq!(config.retention.raw_retention_hours, 168);
        config.validate().unwrap();
    }

    #[test]
    fn a_prefetch_below_the_batch_is_refused() {
        let config = Config::parse_from(["metrics-tracker", "--prefetch", "10", "--batch-size", "20"]);
        assert!(config.validate().is_err());
    }
}
