//! ingest-api's Prometheus metrics.

use std::sync::Arc;

use broker::RelayStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::uploads::UploadSlots;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmitLabels {
    /// high, normal or low.
    pub priority: &'static str,
    /// created, duplicate or conflict.
    pub outcome: &'static str,
}

#[derive(Debug, Clone)]
pub struct IngestMetrics {
    pub submissions: Family<SubmitLabels, Counter>,
    pub outbox_backlog: Gauge,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry, relay: Arc<RelayStats>, uploads: &UploadSlots) -> Self {
        let submissions = Family::<SubmitLabels, Counter>::default();
        registry.register("docflow_jobs_submitted", "Job submissions by priority and outcome", submissions.clone());
        let outbox_backlog = Gauge::default();
        registry.register(
            "docflow_outbox_backlog",
            "Messages committed but not yet confirmed by the broker (sampled at scrape)",
            outbox_backlog.clone(),
        );
        registry.register_collector(Box::new(service_common::metrics::RelayCollector(relay)));
        registry.register("docflow_uploads_in_flight", "Uploads being received now", uploads.in_flight.clone());
        registry.register(
            "docflow_uploads_waiting",
            "Uploads waiting for a slot (MAX_CONCURRENT_UPLOADS reached)",
            uploads.waiting.clone(),
        );
        registry.register(
            "docflow_uploads_refused_busy",
            "Uploads answered 503 server_busy after waiting UPLOAD_QUEUE_TIMEOUT_MS for a slot",
            uploads.refused.clone(),
        );
        IngestMetrics { submissions, outbox_backlog }
    }
}
