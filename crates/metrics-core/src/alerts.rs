//! Alerts, evaluated on request from the current state: each is active while
//! its condition holds and gone as soon as it does not (no hysteresis and no
//! `for:` duration: the Prometheus rules in deploy/prometheus add those for
//! paging; this endpoint answers "what is wrong right now").
//!
//! - `queue_depth_high` (WARNING), per priority queue: more than
//!   ALERT_QUEUE_DEPTH jobs with status QUEUED;
//! - `avg_duration_high` (CRITICAL): attempts that finished in the last
//!   ALERT_WINDOW_MINUTES took more than ALERT_AVG_DURATION_MS on average;
//! - `dlq_size_high` (WARNING): more than ALERT_DLQ_SIZE jobs with status DLQ;
//! - `success_rate_low` (WARNING): completed over finished attempts in the
//!   window is below SLA_SUCCESS_RATE_PCT, once at least ALERT_MIN_FINISHED
//!   attempts finished.

use chrono::{DateTime, Utc};
use job_model::{JobPriority, Topology};
use serde::Serialize;

use crate::config::{AlertArgs, SlaArgs};
use crate::report::ExecutionAgg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Alert {
    /// queue_depth_high, avg_duration_high, dlq_size_high or success_rate_low.
    pub name: &'static str,
    pub severity: Severity,
    pub message: String,
    /// The observed value (jobs, milliseconds or percent).
    pub value: f64,
    pub threshold: f64,
    /// The queue, for queue_depth_high.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertsResponse {
    pub evaluated_at: DateTime<Utc>,
    pub window_minutes: u32,
    /// Only the active alerts; empty when all is well.
    pub alerts: Vec<Alert>,
}

/// What the alerts are evaluated on.
#[derive(Debug, Clone, Default)]
pub struct AlertInputs {
    /// QUEUED jobs per priority.
    pub queued: Vec<(JobPriority, i64)>,
    pub dlq: i64,
    pub window: ExecutionAgg,
}

/// Jobs QUEUED per priority and DLQ in total, from
/// `job_store::stats::queued_and_dlq`'s (status, priority, count) rows.
pub fn split_counts(rows: &[(String, i16, i64)]) -> (Vec<(JobPriority, i64)>, i64) {
    let queued = JobPriority::ALL
        .into_iter()
        .map(|p| (p, rows.iter().filter(|(s, pr, _)| s == "QUEUED" && *pr == p.value()).map(|r| r.2).sum()))
        .collect();
    let dlq = rows.iter().filter(|(s, _, _)| s == "DLQ").map(|r| r.2).sum();
    (queued, dlq)
}

pub fn evaluate(inputs: &AlertInputs, topology: &Topology, alerts: &AlertArgs, sla: &SlaArgs) -> Vec<Alert> {
    let mut active = Vec::new();
    for (priority, depth) in &inputs.queued {
        if *depth > alerts.alert_queue_depth {
            let queue = topology.job_queue(*priority);
            active.push(Alert {
                name: "queue_depth_high",
                severity: Severity::Warning,
                message: format!(
                    "{queue} holds {depth} queued jobs (threshold {}): workers are not keeping up",
                    alerts.alert_queue_depth
                ),
                value: *depth as f64,
                threshold: alerts.alert_queue_depth as f64,
                queue: Some(queue),
            });
        }
    }
    if let Some(avg) = inputs.window.avg_total_ms()
        && avg > alerts.alert_avg_duration_ms
    {
        active.push(Alert {
            name: "avg_duration_high",
            severity: Severity::Critical,
            message: format!(
                "attempts in the last {} min took {avg:.0} ms on average (threshold {} ms); see /api/metrics/bottlenecks",
                alerts.alert_window_minutes, alerts.alert_avg_duration_ms
            ),
            value: avg,
            threshold: alerts.alert_avg_duration_ms,
            queue: None,
        });
    }
    if inputs.dlq > alerts.alert_dlq_size {
        active.push(Alert {
            name: "dlq_size_high",
            severity: Severity::Warning,
            message: format!(
                "{} jobs are dead-lettered (threshold {}): inspect them with dlq-admin",
                inputs.dlq, alerts.alert_dlq_size
            ),
            value: inputs.dlq as f64,
            threshold: alerts.alert_dlq_size as f64,
            queue: None,
        });
    }
    if let Some(rate) = inputs.window.success_rate()
        && inputs.window.finished() >= alerts.alert_min_finished
        && rate < sla.sla_success_rate_pct
    {
        active.push(Alert {
            name: "success_rate_low",
            severity: Severity::Warning,
            message: format!(
                "{rate:.1}% of the {} attempts finished in the last {} min completed (target {}%)",
                inputs.window.finished(),
                alerts.alert_window_minutes,
                sla.sla_success_rate_pct
            ),
            value: rate,
            threshold: sla.sla_success_rate_pct,
            queue: None,
        });
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Config {
        #[command(flatten)]
        sla: SlaArgs,
        #[command(flatten)]
        alerts: AlertArgs,
    }

    fn config() -> Config {
        Config::parse_from(["t"])
    }

    #[test]
    fn thresholds_are_strict_and_alerts_clear() {
        let c = config();
        let topology = Topology::new("");
        let mut inputs = AlertInputs { queued: vec![(JobPriority::High, 1000)], dlq: 100, ..Default::default() };
        assert!(evaluate(&inputs, &topology, &c.alerts, &c.sla).is_empty());
        inputs.queued = vec![(JobPriority::High, 1001)];
        inputs.dlq = 101;
        let names: Vec<_> = evaluate(&inputs, &topology, &c.alerts, &c.sla).iter().map(|a| a.name).collect();
        assert_eq!(names, ["queue_depth_high", "dlq_size_high"]);
    }

    #[test]
    fn success_rate_needs_enough_finished_attempts() {
        let c = config();
        let topology = Topology::new("");
        let mut inputs = AlertInputs::default();
        inputs.window.count = 10;
        inputs.window.by_outcome.insert("failed".into(), 10);
        assert!(evaluate(&inputs, &topology, &c.alerts, &c.sla).is_empty(), "10 < ALERT_MIN_FINISHED");
        inputs.window.count = 40;
        inputs.window.by_outcome.insert("completed".into(), 30);
        let alerts = evaluate(&inputs, &topology, &c.alerts, &c.sla);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].name, "success_rate_low");
        assert_eq!(alerts[0].value, 75.0);
    }
}
