//! `GET /`: throughput, success rate, queue depth and oldest waiting job
//! per priority, p50/p95/p99 per stage, SLA compliance and active alerts,
//! over metrics-tracker's rollups (read through `job_store::rollups`,
//! computed by `metrics_core`, exactly as metrics-tracker's report). The
//! page reloads itself every CONSOLE_REFRESH_SECONDS.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use job_model::Topology;
use maud::{Markup, html};
use metrics_core::alerts::{self, Alert, AlertInputs};
use metrics_core::config::{AlertArgs, SlaArgs};
use metrics_core::report::{Report, WindowData, compute_report};
use serde::Deserialize;
use sqlx::PgPool;

use crate::console::ConsoleSettings;
use crate::console::error::ConsoleError;
use crate::console::forms::invalid;
use crate::console::layout::{self, Nav, ms, pct, svg, when};
use crate::console::session::ConsoleUser;
use crate::console::svg::{StageLatency, Step, stage_latencies, throughput};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct OverviewSettings {
    pub sla: SlaArgs,
    pub alerts: AlertArgs,
    pub topology: Topology,
}

/// Everything the overview shows, read and computed.
pub struct Overview {
    pub hours: u32,
    pub report: Report,
    pub steps: Vec<Step>,
    pub alerts: Vec<Alert>,
    pub dlq_jobs: i64,
}

/// Reads and computes the overview for the last `hours` (also what the
/// benchmark times).
pub async fn load(pool: &PgPool, settings: &OverviewSettings, hours: u32) -> job_store::StoreResult<Overview> {
    let minutes = i64::from(hours) * 60;
    let step_minutes = if hours <= 6 { 15 } else { 60 };
    // Independent reads, concurrently: the page waits for the slowest, not the sum.
    let (window, queued, series, counts, recent) = tokio::try_join!(
        job_store::rollups::load_window(pool, minutes),
        job_store::stats::queued_now(pool),
        job_store::rollups::outcome_series(pool, minutes, step_minutes),
        job_store::stats::queued_and_dlq(pool),
        job_store::rollups::load_window(pool, i64::from(settings.alerts.alert_window_minutes)),
    )?;
    let window: WindowData = window.into();
    let report = compute_report(&window, hours, &settings.sla, &queued);
    // Every step of the window, empty ones too, so the chart is a time axis.
    let step_secs = i64::from(step_minutes) * 60;
    let floor = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp().div_euclid(step_secs) * step_secs, 0);
    let mut by_step: BTreeMap<DateTime<Utc>, Step> = BTreeMap::new();
    let mut at = floor(report.window_start);
    while let Some(t) = at.filter(|t| *t <= report.generated_at) {
        by_step.insert(t, Step { at: t, ..Default::default() });
        at = DateTime::from_timestamp(t.timestamp() + step_secs, 0);
    }
    for (at, outcome, count) in series {
        let s = by_step.entry(at).or_insert_with(|| Step { at, ..Default::default() });
        match outcome.as_str() {
            "completed" => s.completed += count,
            "failed" => s.failed += count,
            "dlq" => s.dlq += count,
            _ => s.retrying += count,
        }
    }
    let (queued_counts, dlq_jobs) = alerts::split_counts(&counts);
    let recent: WindowData = recent.into();
    let inputs = AlertInputs { queued: queued_counts, dlq: dlq_jobs, window: recent.executions };
    let alerts = alerts::evaluate(&inputs, &settings.topology, &settings.alerts, &settings.sla);
    Ok(Overview { hours, report, steps: by_step.into_values().collect(), alerts, dlq_jobs })
}

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    hours: Option<String>,
}

fn card(label: &str, id: &str, value: String) -> Markup {
    html! { div.card { div.label { (label) } div.value id=(id) { (value) } } }
}

pub fn render(o: &Overview) -> Markup {
    let r = &o.report;
    let latencies: Vec<StageLatency> = r
        .stage_breakdown
        .iter()
        .map(|s| StageLatency {
            stage: s.stage.clone(),
            p50: s.p50_ms,
            p95: s.p95_ms,
            p99: s.p99_ms,
            target: r.sla.stages.iter().find(|c| c.stage == s.stage).map(|c| c.target_ms),
        })
        .collect();
    html! {
        p.muted {
            "Last " (o.hours) " h (since " (when(r.window_start)) "), computed " (when(r.generated_at)) ". "
            @for h in [1, 6, 24, 168] { a href={"/?hours=" (h)} { (h) " h" } " " }
        }
        section aria-labelledby="alerts-h" {
            h2 #alerts-h { "Active alerts" }
            @if o.alerts.is_empty() { p #no-alerts { "None: all is well." } }
            @for a in &o.alerts {
                p class={"alert " (serde_json::to_value(a.severity).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())}
                    data-alert=(a.name) { strong { (a.name) } ": " (a.message) }
            }
        }
        div.cards {
            (card("Finished attempts per hour", "throughput", format!("{:.1}", r.throughput_documents_per_hour)))
            (card("Success rate", "success-rate", pct(r.success_rate)))
            (card("Attempts in window", "executions", r.total_executions.to_string()))
            (card("p95 attempt duration", "p95-total", ms(r.p95_total_duration_ms)))
            (card("SLA: attempts within target", "sla-total", pct(r.sla.total_compliance_pct)))
            (card("Jobs in the DLQ", "dlq-size", o.dlq_jobs.to_string()))
        }
        div.charts {
            section.panel { h2 { "Throughput by outcome" } (svg(throughput(&o.steps).into_string())) }
            section.panel { h2 { "Stage latency vs SLA" } (svg(stage_latencies(&latencies).into_string()))
                p.muted { "Dark: p50 · mid: p95 · light: p99 · red tick: SLA target." } }
        }
        section.panel aria-labelledby="queues-h" {
            h2 #queues-h { "Queues" }
            table.stack #queues {
                thead { tr { th { "Priority" } th.num { "Waiting now" } th.num { "Oldest waiting" } th.num { "Wait p50" } th.num { "Wait p95" } } }
                tbody { @for q in &r.queue_wait {
                    tr data-priority=(q.priority.as_str()) {
                        td data-label="Priority" { (q.priority.as_str()) }
                        td.num data-label="Waiting now" { (q.queued_now) }
                        td.num data-label="Oldest waiting" { (q.oldest_waiting_seconds.map_or("—".into(), |s| format!("{s:.0} s"))) }
                        td.num data-label="Wait p50" { (ms(q.p50_ms)) }
                        td.num data-label="Wait p95" { (ms(q.p95_ms)) }
                    }
                } }
            }
        }
        section.panel aria-labelledby="stages-h" {
            h2 #stages-h { "Stages" }
            table.stack #stages {
                thead { tr { th { "Stage" } th.num { "Runs" } th.num { "Failures" } th.num { "p50" } th.num { "p95" } th.num { "p99" }
                             th.num { "SLA target" } th.num { "Within target" } } }
                tbody { @for s in &r.stage_breakdown {
                    @let c = r.sla.stages.iter().find(|c| c.stage == s.stage);
                    tr data-stage=(s.stage) {
                        td data-label="Stage" { (s.stage) }
                        td.num data-label="Runs" { (s.count) }
                        td.num data-label="Failures" { (s.failures) }
                        td.num data-label="p50" { (ms(s.p50_ms)) }
                        td.num data-label="p95" { (ms(s.p95_ms)) }
                        td.num data-label="p99" { (ms(s.p99_ms)) }
                        td.num data-label="SLA target" { (ms(c.map(|c| c.target_ms))) }
                        td.num data-label="Within target" { (pct(c.and_then(|c| c.compliance_pct))) }
                    }
                } }
            }
            p.muted { "Success-rate target " (r.sla.success_rate_target_pct) " %: "
                @match r.sla.success_rate_met { Some(true) => "met", Some(false) => "missed", None => "nothing finished yet" } "." }
        }
    }
}

pub async fn overview(
    user: ConsoleUser,
    q: web::Query<OverviewQuery>,
    state: web::Data<AppState>,
    settings: web::Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    let hours = match q.hours.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        None => 24,
        Some(h) => h
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=168).contains(h))
            .ok_or_else(|| invalid("hours", "hours is 1 to 168"))?,
    };
    let o = load(&state.pool, &settings.overview, hours).await?;
    let refresh = (settings.refresh_seconds > 0).then_some(settings.refresh_seconds);
    Ok(crate::console::html(layout::page_with_refresh("Overview", &user, Nav::Overview, refresh, render(&o))))
}
