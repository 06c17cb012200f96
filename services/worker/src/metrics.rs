//! The worker's Prometheus metrics: what this process did and how long its
//! attempts and stages took. These are per process (they start at zero when
//! the worker does); metrics-tracker exports the same attempts for the
//! whole fleet, deduplicated, as `docflow_job_attempts_total`,
//! `docflow_job_duration_seconds` and `docflow_stage_duration_seconds`, on
//! the same buckets and label values.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use service_common::metrics::duration_buckets;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// completed, failed, retrying or dlq.
    pub outcome: &'static str,
    /// high, normal or low.
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: String,
    /// succeeded or failed.
    pub status: &'static str,
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// duplicate and stale (acked), poison (dead-lettered), lease_lost
    /// (the attempt's work discarded, its delivery requeued).
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    pub attempts: Family<OutcomeLabels, Counter>,
    pub stage_duration: Family<StageLabels, Histogram>,
    pub job_duration: Family<OutcomeLabels, Histogram>,
    pub dropped: Family<DropLabels, Counter>,
    pub crashes_recovered: Counter,
    pub rescued: Counter,
    pub in_flight: Gauge,
    /// Attempts recorded per commit (group commit, `outcomes`).
    pub outcome_group_size: Histogram,
}

impl WorkerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = WorkerMetrics {
            attempts: Family::default(),
            stage_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            job_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            dropped: Family::default(),
            crashes_recovered: Counter::default(),
            rescued: Counter::default(),
            in_flight: Gauge::default(),
            outcome_group_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        };
        registry.register(
            "docflow_worker_attempts",
            "Job attempts this process finished, by outcome and priority",
            m.attempts.clone(),
        );
        registry.register(
            "docflow_worker_stage_duration_seconds",
            "Pipeline stage durations in this process, by stage, the stage's status and priority",
            m.stage_duration.clone(),
        );
        registry.register(
            "docflow_worker_job_duration_seconds",
            "Whole attempt durations in this process, by outcome and priority",
            m.job_duration.clone(),
        );
        registry.register(
            "docflow_worker_deliveries_dropped",
            "Deliveries settled without recording an attempt: duplicates and stale copies (acked), poison (dead-lettered), lost leases (requeued)",
            m.dropped.clone(),
        );
        registry.register(
            "docflow_worker_crash_recoveries",
            "Jobs claimed after their previous worker died",
            m.crashes_recovered.clone(),
        );
        registry.register(
            "docflow_worker_rescued_jobs",
            "Jobs whose lease expired and were queued again by the reaper",
            m.rescued.clone(),
        );
        registry.register("docflow_worker_jobs_in_flight", "Jobs running in this process", m.in_flight.clone());
        registry.register(
            "docflow_worker_outcome_group_size",
            "Attempts whose outcomes this process recorded in one statement (group commit)",
            m.outcome_group_size.clone(),
        );
        m
    }
}
