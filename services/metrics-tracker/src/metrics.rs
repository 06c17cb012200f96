//! metrics-tracker's Prometheus metrics (OpenMetrics text at /metrics).
//!
//! Event-driven series (durations, outcomes, queue wait) are recorded by the
//! consumer once per execution it records for the first time, so a
//! redelivered event is not counted twice. State series (jobs waiting and
//! running, oldest waiting job, recent queue-wait percentiles) are read
//! from Postgres at scrape time. The DLQ's size is dlq-admin's to export
//! (`docflow_dlq_size{kind}`, poison messages included), not this
//! service's. Priorities are labelled in lower case, as the queues are named.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use service_common::metrics::duration_buckets;

use job_model::ExecutionEvent;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The attempt's outcome: completed, failed, retrying or dlq.
    pub outcome: &'static str,
    /// high, normal or low.
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: String,
    /// The stage's own result: succeeded or failed.
    pub status: String,
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub priority: &'static str,
    /// waiting (QUEUED) or running (PROCESSING).
    pub state: &'static str,
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
    pub attempts: Family<AttemptLabels, Counter>,
    pub job_duration: Family<AttemptLabels, Histogram>,
    pub stage_duration: Family<StageLabels, Histogram>,
    pub queue_wait: Family<PriorityLabels, Histogram>,
    pub events: Family<EventLabels, Counter>,
    pub consumer_connected: Gauge,
    pub queue_jobs: Family<StateLabels, Gauge>,
    pub oldest_queued_age:
        Family<PriorityLabels, prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub recent_queue_wait:
        Family<QuantileLabels, prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub retention_deleted: Family<TableLabels, Counter>,
}

impl TrackerMetrics {
    pub fn register(registry: &mut Registry) -> TrackerMetrics {
        let m = TrackerMetrics {
            attempts: Family::default(),
            job_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            stage_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            queue_wait: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 20))),
            events: Family::default(),
            consumer_connected: Gauge::default(),
            queue_jobs: Family::default(),
            oldest_queued_age: Family::default(),
            recent_queue_wait: Family::default(),
            retention_deleted: Family::default(),
        };
        // prometheus-client adds the `_total` suffix to counters.
        registry.register(
            "docflow_job_attempts",
            "Job attempts recorded, by outcome (a job that is retried twice and completes counts 3)",
            m.attempts.clone(),
        );
        registry.register(
            "docflow_job_duration_seconds",
            "Whole attempt durations, by outcome and priority",
            m.job_duration.clone(),
        );
        registry.register(
            "docflow_stage_duration_seconds",
            "Pipeline stage durations, by stage, the stage's status and priority",
            m.stage_duration.clone(),
        );
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
            "docflow_queue_jobs",
            "Jobs per priority queue: waiting (QUEUED: ready, prefetched or in the outbox) or running \
             (PROCESSING: delivered, unacked); sampled at scrape. The worker autoscaler sums both states",
            m.queue_jobs.clone(),
        );
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
        let priority = event.priority.routing_key();
        let labels = AttemptLabels { outcome: event.outcome.as_str(), priority };
        self.attempts.get_or_create(&labels).inc();
        self.job_duration.get_or_create(&labels).observe(event.total_duration_ms / 1000.0);
        for stage in &event.stages {
            self.stage_duration
                .get_or_create(&StageLabels { stage: stage.stage.clone(), status: stage.status.clone(), priority })
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
