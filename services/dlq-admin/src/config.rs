//! Every setting of dlq-admin, as a flag with an environment variable.

use std::time::Duration;

use clap::Parser;
use service_common::config::{AmqpArgs, DatabaseArgs};
use telemetry::LogArgs;

#[derive(Debug, Clone, Parser)]
// A flag given twice takes its last value, so a wrapper script's defaults
// can be overridden by appending.
#[command(
    name = "dlq-admin",
    version,
    about = "docflow dlq-admin: inspect, retry, delete and purge dead-lettered jobs",
    args_override_self = true
)]
pub struct Config {
    /// Address the HTTP server binds to (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8081")]
    pub listen_addr: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Admin tokens as `name:token:role` entries (role `read` or `write`),
    /// comma-separated; the name is the actor audit rows record. The older
    /// `token:role` form names its tokens `token-1`, `token-2`... Sent as
    /// `Authorization: Bearer TOKEN`.
    #[arg(long, env = "ADMIN_TOKENS", value_delimiter = ',', hide_env_values = true)]
    pub admin_tokens: Vec<String>,

    /// Serve without admin tokens (every caller may write). Only for local
    /// development; ignored when ADMIN_TOKENS is set.
    #[arg(long, env = "INSECURE_NO_AUTH", default_value_t = false)]
    pub insecure_no_auth: bool,

    /// DLQ items older than this many days are deleted by the retention
    /// sweep, and by `POST /api/dlq/purge` when it names no age.
    #[arg(long, env = "RABBITMQ_DLQ_RETENTION_DAYS", default_value_t = 7)]
    pub retention_days: u32,

    /// How often the retention sweep runs, in seconds (0 turns it off).
    /// Replicas take turns through a Postgres advisory lock.
    #[arg(long, env = "DLQ_SWEEP_INTERVAL_SECONDS", default_value_t = 3600.0)]
    pub sweep_interval_seconds: f64,

    /// Jobs requeued (or items purged) per transaction in a bulk operation.
    #[arg(long, env = "BULK_BATCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub bulk_batch_size: u32,

    /// Most jobs one bulk retry request may requeue.
    #[arg(long, env = "BULK_RETRY_MAX_JOBS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub bulk_retry_max_jobs: u32,

    /// Jobs per second this process requeues in bulk retries (all requests
    /// together), so a replay cannot flood the workers. 0: no limit.
    #[arg(long, env = "BULK_RETRY_RATE_PER_SECOND", default_value_t = 200)]
    pub bulk_retry_rate_per_second: u32,

    /// Unacknowledged jobs.dlq messages the broker may push to this process.
    /// Each is one small Postgres write, so a modest window keeps the
    /// importer busy without holding many messages that a crash would
    /// return to the queue.
    #[arg(long, env = "DLQ_CONSUMER_PREFETCH", default_value_t = 32)]
    pub consumer_prefetch: u16,

    /// Bytes of a poison message's payload shown in the list (escaped).
    #[arg(long, env = "DLQ_PAYLOAD_PREVIEW_BYTES", default_value_t = 512)]
    pub payload_preview_bytes: usize,

    /// Largest request body accepted, in bytes (a bulk retry's id list).
    #[arg(long, env = "MAX_JSON_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_json_body: usize,

    /// Outbox rows (retried jobs' messages) published per transaction.
    #[arg(long, env = "OUTBOX_BATCH_SIZE", default_value_t = 256)]
    pub outbox_batch_size: i64,

    /// How often the relay looks for outbox rows other processes wrote, in ms.
    #[arg(long, env = "OUTBOX_POLL_INTERVAL_MS", default_value_t = 500)]
    pub outbox_poll_interval_ms: u64,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub http_workers: Option<usize>,

    #[command(flatten)]
    pub console: ConsoleArgs,

    /// The overview's SLA targets (the same variables as metrics-tracker's).
    #[command(flatten)]
    pub sla: metrics_core::config::SlaArgs,

    /// The overview's alert thresholds (the same variables as metrics-tracker's).
    #[command(flatten)]
    pub alerts: metrics_core::config::AlertArgs,
}

/// The web console at `/` (see `src/console/`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Key that encrypts and authenticates the console's session cookie:
    /// at least 32 random bytes, base64. Without it each process draws a
    /// random key at start, so sessions end when it restarts and are not
    /// shared between replicas: set it when running more than one.
    #[arg(long, env = "CONSOLE_SESSION_KEY", hide_env_values = true)]
    pub console_session_key: Option<String>,

    /// Mark the session cookie `Secure` on every response, not only on
    /// requests that came over TLS (set it behind a TLS-terminating proxy).
    #[arg(long, env = "CONSOLE_SECURE_COOKIES", default_value_t = false)]
    pub console_secure_cookies: bool,

    /// How long a console session lasts after logging in, in hours.
    #[arg(long, env = "CONSOLE_SESSION_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub console_session_hours: u32,

    /// Jaeger's UI (e.g. `http://jaeger:16686`): job pages link to
    /// `<url>/trace/<trace id>`. Without it no link is shown.
    #[arg(long, env = "JAEGER_UI_URL")]
    pub jaeger_ui_url: Option<String>,

    /// Console login attempts allowed per client address and minute (the
    /// TCP peer's address: behind a proxy that is the proxy's, so the limit
    /// is shared; 0 turns it off). Over it: 429 with Retry-After.
    #[arg(long, env = "CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
    pub console_login_attempts_per_minute: u32,

    /// How often the overview reloads itself in a browser with JavaScript, in seconds (0: never).
    #[arg(long, env = "CONSOLE_REFRESH_SECONDS", default_value_t = 15)]
    pub console_refresh_seconds: u32,
}

impl Config {
    pub fn sweep_interval(&self) -> Option<Duration> {
        (self.sweep_interval_seconds > 0.0).then(|| Duration::from_secs_f64(self.sweep_interval_seconds))
    }
}
