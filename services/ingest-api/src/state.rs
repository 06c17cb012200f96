//! What the handlers share.

use std::sync::Arc;

use broker::OutboxRelay;
use job_model::Topology;
use job_store::{ConnectionCache, DedupPolicy};
use object_store::ObjectStore;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::domain::Limits;
use crate::metrics::IngestMetrics;
use crate::uploads::{UploadSettings, UploadSlots};

pub struct AppState {
    pub pool: PgPool,
    /// Submissions' connections, reused without the pool's ping on each
    /// release (`job_store::connections`).
    pub connections: ConnectionCache,
    pub relay: OutboxRelay,
    pub topology: Topology,
    pub blobs: Arc<dyn ObjectStore>,
    pub limits: Limits,
    pub uploads: UploadSettings,
    pub upload_slots: UploadSlots,
    pub dedup: DedupPolicy,
    pub max_retries: i32,
    pub max_json_body: usize,
    pub metrics: IngestMetrics,
    pub registry: Arc<Registry>,
    /// Paces the database samples `/metrics` takes.
    pub metrics_throttle: service_common::metrics::SampleThrottle,
}
