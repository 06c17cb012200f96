//! Every setting of the worker, as a flag with an environment variable.

use std::time::Duration;

use clap::Parser;
use job_model::RetryPolicy;
use service_common::blobs::BlobStoreArgs;
use service_common::config::{AmqpArgs, DatabaseArgs};
use telemetry::LogArgs;

#[derive(Debug, Clone, Parser)]
#[command(name = "worker", version, about = "docflow worker: runs queued documents through the pipeline")]
pub struct Config {
    /// Address of the health and metrics HTTP server.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8083")]
    pub listen_addr: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub blob_store: BlobStoreArgs,

    /// Jobs this process runs at once.
    #[arg(long, env = "WORKER_COUNT", default_value_t = 4)]
    pub worker_count: usize,

    /// Unacknowledged messages the broker may push per priority queue
    /// (running plus buffered). Small, so one worker does not hoard LOW work
    /// that another could start; at least WORKER_COUNT lets every slot run
    /// the same priority.
    #[arg(long, env = "WORKER_PREFETCH_COUNT", default_value_t = 4)]
    pub prefetch: u16,

    /// A lower priority with work waiting gets a slot after being passed over
    /// this many times in a row (anti-starvation).
    #[arg(long, env = "WORKER_STARVATION_LIMIT", default_value_t = 8)]
    pub starvation_limit: u32,

    /// How long a claim lasts without a heartbeat, in seconds. A dead
    /// worker's job is rescued about this long after it died.
    #[arg(long, env = "WORKER_LEASE_SECONDS", default_value_t = 10.0)]
    pub lease_seconds: f64,

    /// How often the reaper looks for jobs whose lease expired, in seconds.
    #[arg(long, env = "WORKER_REAPER_INTERVAL_SECONDS", default_value_t = 2.0)]
    pub reaper_interval_seconds: f64,

    /// A job whose worker died this many times is dead-lettered as poison.
    #[arg(long, env = "WORKER_MAX_CRASHES", default_value_t = 3)]
    pub max_crashes: i32,

    /// Time limit for each pipeline stage, in seconds. With 8 stages the
    /// longest attempt is 8× this, which must stay under RabbitMQ's
    /// consumer_timeout (30 minutes by default).
    #[arg(long, env = "WORKER_STAGE_TIMEOUT_SECONDS", default_value_t = 60.0)]
    pub stage_timeout_seconds: f64,

    /// CPU time one job's document work may use (parsing, text, fields), in
    /// seconds. A document that needs more fails as `document_too_complex`,
    /// without retries. CPU time, not wall-clock: a busy worker does not
    /// fail documents that merely waited for a core.
    #[arg(long, env = "WORKER_DOCUMENT_CPU_SECONDS", default_value_t = 15.0)]
    pub document_cpu_seconds: f64,

    /// On SIGTERM, how long in-flight jobs may run before they are given back.
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE_SECONDS", default_value_t = 60.0)]
    pub shutdown_grace_seconds: f64,

    /// Delay before the first retry, in milliseconds; doubles per retry.
    #[arg(long, env = "RETRY_BASE_DELAY_MS", default_value_t = 1000)]
    pub retry_base_delay_ms: u64,

    /// Longest delay between retries, in milliseconds.
    #[arg(long, env = "RETRY_MAX_DELAY_MS", default_value_t = 300_000)]
    pub retry_max_delay_ms: u64,

    /// Outbox rows (retries, dead letters, events) published at once (a
    /// poll's transaction, or handed-over rows).
    #[arg(long, env = "WORKER_BATCH_SIZE", default_value_t = 256)]
    pub batch_size: i64,

    /// Criteria rules file for the criteria_detection stage (default: built in).
    #[arg(long, env = "CRITERIA_RULES_PATH")]
    pub criteria_rules_path: Option<std::path::PathBuf>,

    /// Replace the eight stages by no-ops of the same names, so a benchmark
    /// sees the platform's own cost per job (claim, stage rows, outcome,
    /// events, acks). Jobs complete without a result document or tickets.
    /// For benchmarks only (docflow-bench's `noop` phase), never production.
    #[arg(long, env = "PIPELINE_NOOP", default_value_t = false)]
    pub pipeline_noop: bool,

    /// Name of this worker in leases and events (default: host-pid).
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,
}

impl Config {
    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_seconds)
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(self.retry_base_delay_ms),
            cap: Duration::from_millis(self.retry_max_delay_ms),
        }
    }

    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
            format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..6])
        })
    }
}
