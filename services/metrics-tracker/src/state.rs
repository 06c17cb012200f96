//! What every handler can reach.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use job_model::Topology;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::config::{AlertArgs, SlaArgs};
use crate::metrics::TrackerMetrics;
use crate::queues::BrokerProbe;

pub struct AppState {
    pub pool: PgPool,
    pub topology: Topology,
    pub sla: SlaArgs,
    pub alerts: AlertArgs,
    /// Reports reach back as far as rollups are kept.
    pub max_report_hours: u32,
    pub metrics: TrackerMetrics,
    pub registry: Arc<Registry>,
    /// Paces the database samples `/metrics` takes.
    pub metrics_throttle: service_common::metrics::SampleThrottle,
    pub probe: BrokerProbe,
    /// True while the event consumer holds a broker connection.
    pub consumer_connected: Arc<AtomicBool>,
}
