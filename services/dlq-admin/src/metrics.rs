//! dlq-admin's Prometheus metrics. DLQ size and age are read from Postgres
//! at scrape time, so every replica reports the same (true) numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use broker::RelayStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// job or poison.
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// single, bulk, purge or sweep.
    pub mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ImportLabels {
    /// seen, poison, duplicate or stale.
    pub outcome: &'static str,
}

#[derive(Debug, Clone)]
pub struct AdminMetrics {
    pub dlq_size: Family<KindLabels, Gauge>,
    pub oldest_age_seconds: Gauge<f64, AtomicU64>,
    pub retries: Family<ModeLabels, Counter>,
    pub deleted: Family<ModeLabels, Counter>,
    pub imported: Family<ImportLabels, Counter>,
}

impl AdminMetrics {
    pub fn register(registry: &mut Registry, relay: Arc<RelayStats>, importer_connected: Arc<AtomicBool>) -> Self {
        let m = AdminMetrics {
            dlq_size: Family::default(),
            oldest_age_seconds: Gauge::default(),
            retries: Family::default(),
            deleted: Family::default(),
            imported: Family::default(),
        };
        registry.register("docflow_dlq_size", "Items in the DLQ by kind (sampled at scrape)", m.dlq_size.clone());
        registry.register(
            "docflow_dlq_oldest_item_age_seconds",
            "Age of the oldest DLQ item, 0 when the DLQ is empty (sampled at scrape)",
            m.oldest_age_seconds.clone(),
        );
        registry.register(
            "docflow_dlq_retries_issued",
            "DLQ jobs requeued by this process, by mode",
            m.retries.clone(),
        );
        registry.register("docflow_dlq_deleted", "DLQ items deleted by this process, by mode", m.deleted.clone());
        registry.register(
            "docflow_dlq_messages_imported",
            "Messages consumed from jobs.dlq, by outcome",
            m.imported.clone(),
        );
        registry.register_collector(Box::new(StateCollector { relay, importer_connected }));
        m
    }
}

/// Reads the relay's and the importer's atomics at scrape time.
#[derive(Debug)]
struct StateCollector {
    relay: Arc<RelayStats>,
    importer_connected: Arc<AtomicBool>,
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        service_common::metrics::encode_relay_stats(&self.relay, &mut encoder)?;
        let importing = ConstGauge::new(i64::from(self.importer_connected.load(Ordering::Relaxed)));
        importing.encode(encoder.encode_descriptor(
            "docflow_dlq_importer_connected",
            "1 while the jobs.dlq importer is consuming",
            None,
            importing.metric_type(),
        )?)?;
        Ok(())
    }
}
