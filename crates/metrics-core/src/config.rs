//! SLA targets and alert thresholds, as settings (clap flags with
//! environment variables) that every service showing them flattens into
//! its own config, so one variable sets them everywhere.

use clap::Args;

/// Latency targets (SLA), in milliseconds. A stage complies when its
/// duration is at most its target; the report gives the share that does.
#[derive(Debug, Clone, Args)]
pub struct SlaArgs {
    #[arg(long, env = "SLA_UPLOAD_MS", default_value_t = 100.0)]
    pub sla_upload_ms: f64,
    #[arg(long, env = "SLA_VALIDATION_MS", default_value_t = 50.0)]
    pub sla_validation_ms: f64,
    #[arg(long, env = "SLA_CLASSIFICATION_MS", default_value_t = 200.0)]
    pub sla_classification_ms: f64,
    #[arg(long, env = "SLA_EXTRACTION_MS", default_value_t = 500.0)]
    pub sla_extraction_ms: f64,
    #[arg(long, env = "SLA_ANALYSIS_MS", default_value_t = 300.0)]
    pub sla_analysis_ms: f64,
    #[arg(long, env = "SLA_CRITERIA_DETECTION_MS", default_value_t = 100.0)]
    pub sla_criteria_detection_ms: f64,
    #[arg(long, env = "SLA_TICKET_GENERATION_MS", default_value_t = 100.0)]
    pub sla_ticket_generation_ms: f64,
    #[arg(long, env = "SLA_STORAGE_MS", default_value_t = 150.0)]
    pub sla_storage_ms: f64,
    /// Target for a whole attempt, all stages together.
    #[arg(long, env = "SLA_TOTAL_MS", default_value_t = 1500.0)]
    pub sla_total_ms: f64,
    /// Target success rate in percent: completed over finished (completed,
    /// failed, dead-lettered) attempts. Below it, the success-rate alert fires.
    #[arg(long, env = "SLA_SUCCESS_RATE_PCT", default_value_t = 95.0)]
    pub sla_success_rate_pct: f64,
}

/// The pipeline's stages, in order: reports list them this way.
pub use job_model::STAGES;

impl SlaArgs {
    /// The target of a stage; `None` for a stage this build does not know.
    pub fn stage_target_ms(&self, stage: &str) -> Option<f64> {
        Some(match stage {
            "upload" => self.sla_upload_ms,
            "validation" => self.sla_validation_ms,
            "classification" => self.sla_classification_ms,
            "extraction" => self.sla_extraction_ms,
            "analysis" => self.sla_analysis_ms,
            "criteria_detection" => self.sla_criteria_detection_ms,
            "ticket_generation" => self.sla_ticket_generation_ms,
            "storage" => self.sla_storage_ms,
            _ => return None,
        })
    }
}

/// Alert thresholds (GET /api/alerts). Each alert is active while its
/// condition holds and clears as soon as it does not.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// WARNING when a priority queue holds more than this many QUEUED jobs.
    #[arg(long, env = "ALERT_QUEUE_DEPTH", default_value_t = 1000)]
    pub alert_queue_depth: i64,

    /// CRITICAL when attempts in the window took longer than this on average, in ms.
    #[arg(long, env = "ALERT_AVG_DURATION_MS", default_value_t = 1500.0)]
    pub alert_avg_duration_ms: f64,

    /// WARNING when more than this many jobs are dead-lettered (status DLQ).
    #[arg(long, env = "ALERT_DLQ_SIZE", default_value_t = 100)]
    pub alert_dlq_size: i64,

    /// The window the duration and success-rate alerts look at, in minutes.
    #[arg(long, env = "ALERT_WINDOW_MINUTES", default_value_t = 15)]
    pub alert_window_minutes: u32,

    /// The success-rate alert needs at least this many finished attempts in
    /// the window, so that one failure among three jobs does not page anyone.
    #[arg(long, env = "ALERT_MIN_FINISHED", default_value_t = 20)]
    pub alert_min_finished: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Both {
        #[command(flatten)]
        sla: SlaArgs,
        #[command(flatten)]
        alerts: AlertArgs,
    }

    #[test]
    fn defaults_are_the_documented_targets() {
        let both = Both::parse_from(["t"]);
        assert_eq!(both.sla.stage_target_ms("extraction"), Some(500.0));
        assert_eq!(both.sla.stage_target_ms("ocr"), None);
        assert_eq!(both.alerts.alert_queue_depth, 1000);
    }
}
