//! ingest-api's Prometheus metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use job_model::outbox::RelayStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmitLabels {
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
    pub fn register(registry: &mut Registry, relay: Arc<RelayStats>) -> Self {
        let submissions = Family::<SubmitLabels, Counter>::default();
        registry.register("docflow_jobs_submitted", "Job submissions by priority and outcome", submissions.clone());
        let outbox_backlog = Gauge::default();
        registry.register(
            "docflow_outbox_backlog",
            "Messages committed but not yet confirmed by the broker (sampled at scrape)",
            outbox_backlog.clone(),
        );
        registry.register_collector(Box::new(RelayCollector(relay)));
        IngestMetrics { submissions, outbox_backlog }
    }
}

/// Reads the relay's atomics at scrape time.
#[derive(Debug)]
struct RelayCollector(Arc<RelayStats>);

impl Collector for RelayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let published = ConstCounter::new(self.0.published.load(Ordering::Relaxed));
        published.encode(encoder.encode_descriptor(
            "docflow_outbox_published",
            "Outbox messages confirmed by the broker",
            None,
            published.metric_type(),
        )?)?;
        let failures = ConstCounter::new(self.0.publish_failures.load(Ordering::Relaxed));
        failures.encode(encoder.encode_descriptor(
            "docflow_outbox_publish_failures",
            "Outbox batches that could not be published (they stay and are retried)",
            None,
            failures.metric_type(),
        )?)?;
        let connected = ConstGauge::new(i64::from(self.0.connected.load(Ordering::Relaxed)));
        connected.encode(encoder.encode_descriptor(
            "docflow_outbox_broker_connected",
            "1 while the outbox relay holds a broker connection",
            None,
            connected.metric_type(),
        )?)?;
        Ok(())
    }
}
