//! What the handlers, the sweep and the importer share.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use broker::OutboxRelay;
use governor::DefaultDirectRateLimiter;
use job_model::Topology;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::metrics::AdminMetrics;

/// Limits of bulk operations.
#[derive(Debug, Clone, Copy)]
pub struct BulkLimits {
    /// Rows per transaction.
    pub batch_size: u32,
    /// Most jobs one bulk retry requeues.
    pub max_jobs: u32,
}

pub struct AppState {
    pub pool: PgPool,
    pub relay: OutboxRelay,
    pub topology: Topology,
    pub retention_days: u32,
    pub bulk: BulkLimits,
    /// Paces bulk requeues (jobs per second, this process); None: unlimited.
    pub replay_limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub payload_preview_bytes: usize,
    pub max_json_body: usize,
    pub importer_connected: Arc<AtomicBool>,
    pub metrics: AdminMetrics,
    pub registry: Arc<Registry>,
    /// Paces the database samples `/metrics` takes.
    pub metrics_throttle: service_common::metrics::SampleThrottle,
}
