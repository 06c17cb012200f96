//! Every setting of ingest-api, as a flag with an environment variable.

use clap::Parser;
use service_common::blobs::BlobStoreArgs;
use service_common::config::{AmqpArgs, DatabaseArgs};
use telemetry::LogArgs;

#[derive(Debug, Clone, Parser)]
#[command(name = "ingest-api", version, about = "docflow ingest API: accepts documents and queues them durably")]
pub struct Config {
    /// Address the HTTP server binds to (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub blob_store: BlobStoreArgs,

    /// API keys clients send as `Authorization: Bearer KEY`, comma-separated.
    #[arg(long, env = "INGEST_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,

    /// Serve without API keys. Only for local development; ignored when
    /// INGEST_API_KEYS is set.
    #[arg(long, env = "INSECURE_NO_AUTH", default_value_t = false)]
    pub insecure_no_auth: bool,

    /// Requests per second each API key may make (0 turns limiting off).
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 500)]
    pub rate_limit_per_second: u32,

    /// Requests a key may make in a burst above the steady rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 1000)]
    pub rate_limit_burst: u32,

    /// Largest document accepted, in bytes (declared `file_size` or upload).
    #[arg(long, env = "MAX_FILE_SIZE_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_file_size: i64,

    /// Uploads received at once; past it an upload waits
    /// `UPLOAD_QUEUE_TIMEOUT_MS` for a slot, then gets 503 `server_busy`
    /// with Retry-After. Each holds at most two parts
    /// (`UPLOAD_PART_SIZE_BYTES`) in memory, whatever its size.
    #[arg(long, env = "MAX_CONCURRENT_UPLOADS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_uploads: u32,

    /// How long an upload waits for a slot when all are taken, in ms (0:
    /// refuse at once). The wait comes before the body is read.
    #[arg(long, env = "UPLOAD_QUEUE_TIMEOUT_MS", default_value_t = 1000)]
    pub upload_queue_timeout_ms: u64,

    /// Uploads are written to the blob store in parts of this many bytes as
    /// they arrive; a smaller file is one plain write. S3 needs at least
    /// 5 MiB; the local store takes any size from 64 KiB.
    #[arg(long, env = "UPLOAD_PART_SIZE_BYTES", default_value_t = 5 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(64 * 1024..))]
    pub upload_part_size: u64,

    /// An upload whose client sends nothing for this long, in ms, is
    /// answered 408 `request_timeout` and gives up its slot.
    #[arg(long, env = "UPLOAD_IDLE_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_idle_timeout_ms: u64,

    /// Largest JSON body accepted, in bytes.
    #[arg(long, env = "MAX_JSON_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_json_body: usize,

    /// Most tags one job may carry.
    #[arg(long, env = "MAX_TAGS", default_value_t = 32)]
    pub max_tags: usize,

    /// Without an Idempotency-Key, a second submission of the same
    /// document_id within this many seconds returns the first job (0: off).
    #[arg(long, env = "DEDUP_WINDOW_SECONDS", default_value_t = 3600)]
    pub dedup_window_seconds: u64,

    /// Retries a job gets before it is dead-lettered.
    #[arg(long, env = "RABBITMQ_MAX_RETRIES", default_value_t = 3)]
    pub max_retries: i32,

    /// Outbox rows published at once (a poll's transaction, or handed-over rows).
    #[arg(long, env = "OUTBOX_BATCH_SIZE", default_value_t = 256)]
    pub outbox_batch_size: i64,

    /// How often the relay looks for outbox rows other processes wrote, in ms.
    #[arg(long, env = "OUTBOX_POLL_INTERVAL_MS", default_value_t = 500)]
    pub outbox_poll_interval_ms: u64,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub http_workers: Option<usize>,
}
