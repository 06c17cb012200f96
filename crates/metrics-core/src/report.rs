//! Reports, stage statistics and bottlenecks, read from the per-minute
//! rollups only: a day of traffic is at most 1,440 minutes × (stages +
//! priority/outcome pairs) rows, whatever the number of executions.
//!
//! Definitions:
//! - an *execution* is one attempt of a job (one event);
//! - `success_rate` is completed over finished attempts (completed, failed
//!   and dead-lettered; an attempt that ends in a retry is not an outcome of
//!   the job), in percent, as the Prometheus alert has it;
//! - `throughput_documents_per_hour` is finished attempts per hour;
//! - a window of `hours` starts `hours` before the current minute began and
//!   includes the current minute; executions count in the minute they
//!   finished;
//! - percentiles come from the merged sketches ([`crate::sketch`]: never
//!   below the exact nearest-rank value, at most 0.79 % above); counts,
//!   sums, averages, minima and maxima are exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use job_model::JobPriority;
use job_store::rollups::{ExecutionRollupRow, RollupWindow, StageRollupRow};
use serde::Serialize;

use crate::config::{STAGES, SlaArgs};
use crate::sketch::{MAX_RELATIVE_ERROR, SIGNIFICANT_FIGURES, Sketch};

/// One stage's merged rollups.
#[derive(Debug, Default, Clone)]
pub struct StageAgg {
    pub count: i64,
    pub failures: i64,
    pub sum_ms: f64,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub sum_share_pct: f64,
    pub sketch: Sketch,
}

#[derive(Debug, Default, Clone)]
pub struct WaitAgg {
    pub count: i64,
    pub sum_ms: f64,
    pub max_ms: Option<f64>,
    pub sketch: Sketch,
}

#[derive(Debug, Default, Clone)]
pub struct ExecutionAgg {
    pub count: i64,
    pub by_outcome: BTreeMap<String, i64>,
    pub sum_total_ms: f64,
    pub max_total_ms: Option<f64>,
    pub total_sketch: Sketch,
    pub wait: BTreeMap<i16, WaitAgg>,
}

impl ExecutionAgg {
    pub fn outcome(&self, outcome: &str) -> i64 {
        self.by_outcome.get(outcome).copied().unwrap_or(0)
    }

    /// Completed, failed and dead-lettered attempts.
    pub fn finished(&self) -> i64 {
        self.outcome("completed") + self.outcome("failed") + self.outcome("dlq")
    }

    /// Completed over finished, in percent; `None` with nothing finished.
    pub fn success_rate(&self) -> Option<f64> {
        let finished = self.finished();
        (finished > 0).then(|| self.outcome("completed") as f64 / finished as f64 * 100.0)
    }

    pub fn avg_total_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_total_ms / self.count as f64)
    }
}

/// Everything the rollups hold for a window.
#[derive(Debug, Default, Clone)]
pub struct WindowData {
    pub window_start: DateTime<Utc>,
    pub stages: BTreeMap<String, StageAgg>,
    pub executions: ExecutionAgg,
}

impl From<RollupWindow> for WindowData {
    /// Merges a window's rollup rows (as `job_store::rollups` reads them).
    /// Decoding and merging the sketches is most of a report's time (a day
    /// is some 29,000 of them), so the stage rows and the execution rows
    /// are merged on two threads.
    fn from(window: RollupWindow) -> WindowData {
        let RollupWindow { start, stages, executions } = window;
        let (stages, executions) = std::thread::scope(|scope| {
            let stages = scope.spawn(move || merge_stages(stages));
            let executions = merge_executions(executions);
            (stages.join().expect("merging stage rollups does not panic"), executions)
        });
        WindowData { window_start: start, stages, executions }
    }
}

fn merge_stages(rows: Vec<StageRollupRow>) -> BTreeMap<String, StageAgg> {
    let mut stages: BTreeMap<String, StageAgg> = BTreeMap::new();
    for row in rows {
        let agg = stages.entry(row.stage).or_default();
        agg.count += row.count;
        agg.failures += row.failures;
        agg.sum_ms += row.sum_ms;
        agg.min_ms = opt_min(agg.min_ms, row.min_ms);
        agg.max_ms = opt_max(agg.max_ms, row.max_ms);
        agg.sum_share_pct += row.sum_share_pct;
        agg.sketch.merge_encoded(row.sketch.as_deref());
    }
    stages
}

fn merge_executions(rows: Vec<ExecutionRollupRow>) -> ExecutionAgg {
    let mut e = ExecutionAgg::default();
    for row in rows {
        e.count += row.count;
        *e.by_outcome.entry(row.outcome).or_default() += row.count;
        e.sum_total_ms += row.sum_total_ms;
        e.max_total_ms = opt_max(e.max_total_ms, row.max_total_ms);
        e.total_sketch.merge_encoded(row.total_sketch.as_deref());
        if row.wait_count > 0 {
            let w = e.wait.entry(row.priority).or_default();
            w.count += row.wait_count;
            w.sum_ms += row.sum_wait_ms;
            w.max_ms = opt_max(w.max_ms, row.max_wait_ms);
            w.sketch.merge_encoded(row.wait_sketch.as_deref());
        }
    }
    e
}

fn opt_min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn opt_max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Stages in pipeline order, then any others by name.
fn ordered<T>(stages: &BTreeMap<String, T>) -> Vec<(&String, &T)> {
    let mut out: Vec<(&String, &T)> = STAGES.iter().filter_map(|s| stages.get_key_value(*s)).collect();
    out.extend(stages.iter().filter(|(k, _)| !STAGES.contains(&k.as_str())));
    out
}

/// How percentiles are computed, so a reader knows their error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SketchInfo {
    /// "hdr_histogram".
    pub kind: &'static str,
    pub significant_figures: u8,
    /// Percentiles are never below the exact nearest-rank value and at most
    /// this fraction above it (1/128).
    pub max_relative_error: f64,
}

pub fn sketch_info() -> SketchInfo {
    SketchInfo {
        kind: "hdr_histogram",
        significant_figures: SIGNIFICANT_FIGURES,
        max_relative_error: MAX_RELATIVE_ERROR,
    }
}

/// One stage in the report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageBreakdown {
    pub stage: String,
    pub count: i64,
    pub failures: i64,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// This stage's time over the summed duration of all executions, in percent.
    pub share_of_total_time_pct: Option<f64>,
}

/// Compliance with one latency target.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageCompliance {
    pub stage: String,
    pub target_ms: f64,
    pub count: i64,
    /// Share of this stage's timings at or under the target, in percent.
    pub compliance_pct: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Whether the p95 is within the target.
    pub p95_within_target: Option<bool>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlaReport {
    pub total_target_ms: f64,
    /// Share of executions whose whole duration was within `total_target_ms`, in percent.
    pub total_compliance_pct: Option<f64>,
    pub success_rate_target_pct: f64,
    pub success_rate_met: Option<bool>,
    /// Per stage with a configured target, in pipeline order.
    pub stages: Vec<StageCompliance>,
}

/// Queue wait (submission to the first attempt's start) for one priority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueWait {
    pub priority: JobPriority,
    /// First attempts in the window.
    pub executions: i64,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Jobs waiting now (status QUEUED).
    pub queued_now: i64,
    /// How long the oldest QUEUED job has waited (since it was last queued), in seconds.
    pub oldest_waiting_seconds: Option<f64>,
}

/// `GET /api/metrics/report`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub period_hours: u32,
    pub window_start: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// Attempts that finished in the window, whatever their outcome.
    pub total_executions: i64,
    /// Attempts that completed.
    pub successful_executions: i64,
    pub failed_executions: i64,
    pub retrying_executions: i64,
    pub dlq_executions: i64,
    /// Completed over finished (completed + failed + dlq) attempts, percent; null when none finished.
    pub success_rate: Option<f64>,
    pub avg_total_duration_ms: Option<f64>,
    pub p50_total_duration_ms: Option<f64>,
    pub p95_total_duration_ms: Option<f64>,
    pub p99_total_duration_ms: Option<f64>,
    pub max_total_duration_ms: Option<f64>,
    /// Finished attempts per hour of the window.
    pub throughput_documents_per_hour: f64,
    pub stage_breakdown: Vec<StageBreakdown>,
    pub sla: SlaReport,
    pub queue_wait: Vec<QueueWait>,
    pub sketch: SketchInfo,
}

pub fn compute_report(
    data: &WindowData,
    hours: u32,
    sla: &SlaArgs,
    queued: &BTreeMap<i16, (i64, Option<f64>)>,
) -> Report {
    let e = &data.executions;
    let total_time: f64 = e.sum_total_ms;
    let stage_breakdown = ordered(&data.stages)
        .into_iter()
        .map(|(stage, s)| StageBreakdown {
            stage: stage.clone(),
            count: s.count,
            failures: s.failures,
            avg_ms: (s.count > 0).then(|| s.sum_ms / s.count as f64),
            p50_ms: s.sketch.quantile_ms(0.50),
            p95_ms: s.sketch.quantile_ms(0.95),
            p99_ms: s.sketch.quantile_ms(0.99),
            max_ms: s.max_ms,
            share_of_total_time_pct: (total_time > 0.0).then(|| s.sum_ms / total_time * 100.0),
        })
        .collect();

    let pct = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64 * 100.0);
    let stages = STAGES
        .iter()
        .filter_map(|stage| {
            let target = sla.stage_target_ms(stage)?;
            let agg = data.stages.get(*stage);
            let count = agg.map_or(0, |a| a.count);
            let (within, p95) =
                agg.map_or((0, None), |a| (a.sketch.count_at_or_below_ms(target), a.sketch.quantile_ms(0.95)));
            Some(StageCompliance {
                stage: (*stage).to_owned(),
                target_ms: target,
                count,
                compliance_pct: pct(within, count.max(0) as u64),
                p95_ms: p95,
                p95_within_target: p95.map(|p| p <= target),
            })
        })
        .collect();
    let success_rate = e.success_rate();
    let sla_report = SlaReport {
        total_target_ms: sla.sla_total_ms,
        total_compliance_pct: pct(e.total_sketch.count_at_or_below_ms(sla.sla_total_ms), e.total_sketch.count()),
        success_rate_target_pct: sla.sla_success_rate_pct,
        success_rate_met: success_rate.map(|r| r >= sla.sla_success_rate_pct),
        stages,
    };

    let queue_wait = JobPriority::ALL
        .into_iter()
        .map(|p| {
            let w = e.wait.get(&p.value());
            let (queued_now, oldest) = queued.get(&p.value()).copied().unwrap_or((0, None));
            QueueWait {
                priority: p,
                executions: w.map_or(0, |w| w.count),
                avg_ms: w.filter(|w| w.count > 0).map(|w| w.sum_ms / w.count as f64),
                p50_ms: w.and_then(|w| w.sketch.quantile_ms(0.50)),
                p95_ms: w.and_then(|w| w.sketch.quantile_ms(0.95)),
                max_ms: w.and_then(|w| w.max_ms),
                queued_now,
                oldest_waiting_seconds: oldest,
            }
        })
        .collect();

    Report {
        period_hours: hours,
        window_start: data.window_start,
        generated_at: Utc::now(),
        total_executions: e.count,
        successful_executions: e.outcome("completed"),
        failed_executions: e.outcome("failed"),
        retrying_executions: e.outcome("retrying"),
        dlq_executions: e.outcome("dlq"),
        success_rate,
        avg_total_duration_ms: e.avg_total_ms(),
        p50_total_duration_ms: e.total_sketch.quantile_ms(0.50),
        p95_total_duration_ms: e.total_sketch.quantile_ms(0.95),
        p99_total_duration_ms: e.total_sketch.quantile_ms(0.99),
        max_total_duration_ms: e.max_total_ms,
        throughput_documents_per_hour: e.finished() as f64 / f64::from(hours.max(1)),
        stage_breakdown,
        sla: sla_report,
        queue_wait,
        sketch: sketch_info(),
    }
}

/// One stage in `GET /api/metrics/stages`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageStats {
    pub stage: String,
    pub count: i64,
    pub failures: i64,
    /// Failed over all timings of the stage, in percent.
    pub failure_rate: Option<f64>,
    pub min_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub sla_target_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StagesReport {
    pub period_hours: u32,
    pub window_start: DateTime<Utc>,
    pub stages: Vec<StageStats>,
    pub sketch: SketchInfo,
}

pub fn compute_stages(data: &WindowData, hours: u32, sla: &SlaArgs) -> StagesReport {
    let stages = ordered(&data.stages)
        .into_iter()
        .map(|(stage, s)| StageStats {
            stage: stage.clone(),
            count: s.count,
            failures: s.failures,
            failure_rate: (s.count > 0).then(|| s.failures as f64 / s.count as f64 * 100.0),
            min_ms: s.min_ms,
            avg_ms: (s.count > 0).then(|| s.sum_ms / s.count as f64),
            p50_ms: s.sketch.quantile_ms(0.50),
            p95_ms: s.sketch.quantile_ms(0.95),
            p99_ms: s.sketch.quantile_ms(0.99),
            max_ms: s.max_ms,
            sla_target_ms: sla.stage_target_ms(stage),
        })
        .collect();
    StagesReport { period_hours: hours, window_start: data.window_start, stages, sketch: sketch_info() }
}

/// A stage whose latency dominates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Bottleneck {
    pub stage: String,
    /// Mean, over the executions that ran the stage, of its share of the
    /// execution's total duration, in percent.
    pub avg_percentage_of_total: f64,
    pub count: i64,
    pub avg_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub sla_target_ms: Option<f64>,
    /// Whether the stage's p95 is above its SLA target.
    pub p95_exceeds_target: Option<bool>,
    pub recommendation: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BottleneckReport {
    pub period_hours: u32,
    pub window_start: DateTime<Utc>,
    pub threshold_percentile: f64,
    /// The cut-off: the `threshold_percentile` quantile of the stages'
    /// `avg_percentage_of_total`. Null when no stage ran.
    pub threshold_percentage: Option<f64>,
    /// Stages at or above the cut-off, largest share first.
    pub bottlenecks: Vec<Bottleneck>,
}

/// The `q` quantile of `values` with linear interpolation between ranks.
pub fn interpolated_quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// What to do about a slow stage.
pub fn recommendation(stage: &str) -> String {
    match stage {
        "upload" => {
            "Blob fetching and hashing dominate: check blob-store latency and bandwidth, keep workers close to \
                     the store, and raise WORKER_COUNT so slow I/O overlaps."
                .into()
        }
        "validation" => "Validation dominates, which a header check should not: look for documents read whole to \
                         sniff their type or to detect encryption, and cap the bytes read."
            .into(),
        "classification" => "Classification dominates: limit the text sampled for classification to the first \
                             page, cache per-sender results, or scale workers."
            .into(),
        "extraction" => "PDF text extraction dominates: scale workers (KEDA on queue depth) or give them more CPU, \
                         cap the pages extracted per document, and route scanned images (needs_ocr) to a separate \
                         OCR pool."
            .into(),
        "analysis" => "Field analysis dominates: check the field patterns for backtracking on long text, and analyse \
                       only the pages that hold invoice fields."
            .into(),
        "criteria_detection" => "Criteria detection dominates: the duplicate-invoice lookup probably misses an index \
                                 on its columns; check the rules file for expensive rules."
            .into(),
        "ticket_generation" => "Ticket generation dominates: insert a job's tickets in one statement and check for \
                                lock contention on the tickets table."
            .into(),
        "storage" => "Storage dominates: check Postgres write latency and blob-store PUT latency; write results in \
                      one transaction and keep large payloads in the blob store."
            .into(),
        other => format!("Stage {other} dominates: profile it (its spans are in the job's trace) and scale workers."),
    }
}

pub fn compute_bottlenecks(
    data: &WindowData,
    hours: u32,
    threshold_percentile: f64,
    sla: &SlaArgs,
) -> BottleneckReport {
    let candidates: Vec<(&String, &StageAgg, f64)> = ordered(&data.stages)
        .into_iter()
        .filter(|(_, s)| s.count > 0)
        .map(|(stage, s)| (stage, s, s.sum_share_pct / s.count as f64))
        .collect();
    let shares: Vec<f64> = candidates.iter().map(|c| c.2).collect();
    let threshold = interpolated_quantile(&shares, threshold_percentile);
    let mut bottlenecks: Vec<Bottleneck> = match threshold {
        None => Vec::new(),
        Some(t) => candidates
            .into_iter()
            // A hair of tolerance: the top stage's own share is the cut-off at q = 1.
            .filter(|(_, _, share)| *share >= t - 1e-9)
            .map(|(stage, s, share)| {
                let p95 = s.sketch.quantile_ms(0.95);
                let target = sla.stage_target_ms(stage);
                Bottleneck {
                    stage: stage.clone(),
                    avg_percentage_of_total: share,
                    count: s.count,
                    avg_ms: Some(s.sum_ms / s.count as f64),
                    p95_ms: p95,
                    sla_target_ms: target,
                    p95_exceeds_target: p95.zip(target).map(|(p, t)| p > t),
                    recommendation: recommendation(stage),
                }
            })
            .collect(),
    };
    bottlenecks.sort_by(|a, b| b.avg_percentage_of_total.total_cmp(&a.avg_percentage_of_total));
    BottleneckReport {
        period_hours: hours,
        window_start: data.window_start,
        threshold_percentile,
        threshold_percentage: threshold,
        bottlenecks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Sla {
        #[command(flatten)]
        sla: SlaArgs,
    }

    #[test]
    fn interpolated_quantiles() {
        assert_eq!(interpolated_quantile(&[], 0.5), None);
        assert_eq!(interpolated_quantile(&[3.0], 0.85), Some(3.0));
        assert_eq!(interpolated_quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), Some(3.0));
        assert_eq!(interpolated_quantile(&[5.0, 1.0], 1.0), Some(5.0));
        let v = interpolated_quantile(&[0.0, 10.0], 0.85).unwrap();
        assert!((v - 8.5).abs() < 1e-9);
    }

    fn stage(count: i64, share: f64) -> StageAgg {
        StageAgg { count, sum_ms: 10.0 * count as f64, sum_share_pct: share * count as f64, ..Default::default() }
    }

    #[test]
    fn bottlenecks_are_the_stages_above_the_percentile_of_shares() {
        let mut data = WindowData::default();
        for (name, share) in [
            ("upload", 2.0),
            ("validation", 1.0),
            ("classification", 5.0),
            ("extraction", 60.0),
            ("analysis", 20.0),
            ("criteria_detection", 4.0),
            ("ticket_generation", 3.0),
            ("storage", 5.0),
        ] {
            data.stages.insert(name.into(), stage(10, share));
        }
        let sla = <Sla as clap::Parser>::parse_from(["t"]).sla;
        let report = compute_bottlenecks(&data, 24, 0.85, &sla);
        let names: Vec<&str> = report.bottlenecks.iter().map(|b| b.stage.as_str()).collect();
        assert_eq!(names, ["extraction", "analysis"]);
        assert!(report.bottlenecks[0].recommendation.starts_with("PDF text extraction dominates"));
        assert!((report.bottlenecks[0].avg_percentage_of_total - 60.0).abs() < 1e-9);
        let only_top = compute_bottlenecks(&data, 24, 1.0, &sla);
        assert_eq!(only_top.bottlenecks.len(), 1);
        assert_eq!(compute_bottlenecks(&data, 24, 0.0, &sla).bottlenecks.len(), 8);
        assert!(compute_bottlenecks(&WindowData::default(), 24, 0.85, &sla).bottlenecks.is_empty());
    }
}
