//! metrics-tracker's Prometheus metrics (OpenMetrics text at /metrics).
//!
//! Event-driven series (durations, outcomes, queue wait) are recorded by the
//! consumer once per execution it records for the first time, so a
//! redelivered event is not counted twice. State series (queue depth, DLQ
//! size, oldest waiting job, recent queue-wait percentiles) are read from
//! Postgres at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use job_model::ExecutionEvent;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    /// A stage name, or "total" for the whole attempt.
    pub stage: String,
    pub priority: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The attempt's outcome: completed, failed, retrying or dlq.
    pub status: &'static str,
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityLabels {
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabels {
    pub priority: &'static str,
    pub quantile: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// recorded, duplicate or malformed.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: &'static str,
}

#[derive(Debug, Clone)]
pub struct TrackerMetrics {
    pub job_duration: Family<DurationLabels, Histogram>,
    pub jobs: Family<JobLabels, Counter>,
    pub queue_wait: Family<PriorityLabels, Histogram>,
    pub events: Family<EventLabels, Counter>,
    pub consumer_connected: Gauge,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub dlq_size: Gauge,
    pub oldest_queued_age:
        Family<PriorityLabels, prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub recent_queue_wait:
        Family<QuantileLabels, prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub retention_deleted: Family<TableLabels, Counter>,
}

/// 1 ms to about 65 s, doubling.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 17)
}

impl TrackerMetrics {
    pub fn register(registry: &mut Registry) -> TrackerMetrics {
        let m = TrackerMetrics {
            job_duration: Family::new_with_constructor(|| Histogram::new(seconds_buckets())),
            jobs: Family::default(),
            queue_wait: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 20))),
            events: Family::default(),
            consumer_connected: Gauge::default(),
            queue_depth: Family::default(),
            dlq_size: Gauge::default(),
            oldest_queued_age: Family::default(),
            recent_queue_wait: Family::default(),
            retention_deleted: Family::default(),
        };
        registry.register(
            "docflow_job_duration_seconds",
            "Execution durations: stage=\"total\" is a whole attempt, any other stage one pipeline stage",
            m.job_duration.clone(),
        );
        // prometheus-client adds the `_total` suffix to counters.
        registry.register("docflow_jobs", "Finished job attempts by outcome (status) and priority", m.jobs.clone());
        registry.register(
            "docflow_queue_wait_seconds",
            "Time from submission to the first attempt's start, by priority",
            m.queue_wait.clone(),
        );
        registry.register(
            "docflow_metrics_events",
            "Execution events consumed, by result (recorded, duplicate, malformed)",
            m.events.clone(),
        );
        registry.register(
            "docflow_metrics_consumer_connected",
            "1 while the event consumer holds a broker connection",
            m.consumer_connected.clone(),
        );
        registry.register(
            "docflow_queue_depth",
            "Jobs waiting (status QUEUED) per priority queue (sampled at scrape)",
            m.queue_depth.clone(),
        );
        registry.register("docflow_dlq_size", "Jobs parked in the dead-letter queue (status DLQ)", m.dlq_size.clone());
        registry.register(
            "docflow_queue_oldest_job_age_seconds",
            "How long the oldest QUEUED job of each priority has been waiting",
            m.oldest_queued_age.clone(),
        );
        registry.register(
            "docflow_queue_wait_recent_seconds",
            "Queue-wait percentiles (quantile 0.5, 0.95) over the alert window, from the rollups",
            m.recent_queue_wait.clone(),
        );
        registry.register(
            "docflow_metrics_retention_deleted",
            "Rows removed by the retention sweep, by table",
            m.retention_deleted.clone(),
        );
        m
    }

    /// Records one execution seen for the first time.
    pub fn observe(&self, event: &ExecutionEvent) {
        let priority = event.priority.as_str();
        let outcome = event.outcome.as_str();
        self.jobs.get_or_create(&JobLabels { status: outcome, priority }).inc();
        self.job_duration
            .get_or_create(&DurationLabels { stage: "total".into(), priority, outcome })
            .observe(event.total_duration_ms / 1000.0);
        for stage in &event.stages {
            self.job_duration
                .get_or_create(&DurationLabels { stage: stage.stage.clone(), priority, outcome })
                .observe(stage.duration_ms / 1000.0);
        }
        if event.attempt <= 1 {
            self.queue_wait.get_or_create(&PriorityLabels { priority }).observe(event.queue_wait_ms / 1000.0);
        }
    }

    pub fn count_events(&self, result: &'static str, n: u64) {
        if n > 0 {
            self.events.get_or_create(&EventLabels { result }).inc_by(n);
        }
    }
}
