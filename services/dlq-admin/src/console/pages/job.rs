//! `GET /jobs/{id}`: the job, its status timeline (job_events), a stage
//! waterfall per attempt (to scale, errors shown), its extracted fields,
//! findings and tickets, and a link to its trace in Jaeger.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use job_model::{JobStatus, StageRecord};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use service_common::{ApiError, ErrorCode};

use super::status_badge;
use crate::console::ConsoleSettings;
use crate::console::error::ConsoleError;
use crate::console::layout::{self, Nav, csrf_field, notice, reason_field, svg, when};
use crate::console::session::ConsoleUser;
use crate::console::svg::{Bar, waterfall};
use crate::domain::parse_id;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct JobQuery {
    notice: Option<String>,
}

/// Each attempt's stages as waterfall bars, attempts in order.
pub fn attempts(stages: &[StageRecord]) -> BTreeMap<i32, Vec<Bar>> {
    let mut by_attempt: BTreeMap<i32, Vec<&StageRecord>> = BTreeMap::new();
    for s in stages {
        by_attempt.entry(s.attempt).or_default().push(s);
    }
    by_attempt
        .into_iter()
        .map(|(attempt, stages)| {
            let start = stages.iter().map(|s| s.started_at).min().expect("an attempt has a stage");
            let bars = stages
                .iter()
                .map(|s| Bar {
                    label: s.stage.clone(),
                    offset_ms: (s.started_at - start).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                    duration_ms: s.duration_ms,
                    failed: s.status != "succeeded",
                    error: s.error.clone(),
                })
                .collect();
            (attempt, bars)
        })
        .collect()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// The result document's fields (`{value, confidence, source}` each).
fn fields(result: &Value) -> Markup {
    let Some(map) = result.get("fields").and_then(Value::as_object) else {
        return html! { p.muted { "No fields." } };
    };
    html! {
        table.stack #fields {
            thead { tr { th { "Field" } th { "Value" } th.num { "Confidence" } th { "Source" } } }
            tbody {
                @for (name, f) in map {
                    @if let Some(value) = f.get("value") {
                        tr data-field=(name) {
                            td data-label="Field" { (name) }
                            td data-label="Value" { (text_of(value)) }
                            td.num data-label="Confidence" {
                                @if let Some(c) = f.get("confidence").and_then(Value::as_f64) { (format!("{c:.2}")) } @else { "—" }
                            }
                            td data-label="Source" { (f.get("source").map(text_of).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn show(
    user: ConsoleUser,
    path: web::Path<String>,
    q: web::Query<JobQuery>,
    state: web::Data<AppState>,
    settings: web::Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_id(&path)?;
    let pool = &state.pool;
    let job = job_store::jobs::get_job(pool, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::JobNotFound, format!("no job {id}")))?;
    let history = job_store::search::job_history(pool, id).await?;
    let stages = job_store::jobs::job_stages(pool, id).await?;
    let result = job_store::results::document_of(pool, id).await?;
    let tickets = job_store::tickets::of_job(pool, id).await?;
    let trace_link = match (&settings.jaeger_ui_url, &job.trace_id) {
        (Some(base), Some(trace)) => Some(format!("{base}/trace/{trace}")),
        _ => None,
    };
    let in_dlq = job.status == JobStatus::Dlq;
    let body = html! {
        (notice(q.notice.as_deref()))
        div.panel {
            dl.facts #job-facts {
                dt { "Job" } dd.mono { (job.job_id) }
                dt { "Status" } dd #job-status data-status=(job.status.as_str()) { (status_badge(job.status.as_str())) }
                dt { "Document" } dd #document-id { (job.document.document_id) }
                dt { "File" } dd { (job.document.filename) " (" (job.document.file_size) " bytes)" }
                dt { "Priority" } dd { (job.document.priority.as_str()) }
                dt { "Attempt" } dd { (job.attempt) " (retries " (job.retry_count) " of " (job.max_retries) ")" }
                @if !job.document.tags.is_empty() {
                    dt { "Tags" } dd { @for (k, v) in &job.document.tags { code { (k) "=" (v) } " " } }
                }
                dt { "Submitted" } dd { (when(job.created_at)) }
                @if let Some(e) = &job.error_message {
                    dt { "Error" } dd.error-text #job-error {
                        @if let Some(stage) = &job.error_stage { "at " (stage) ": " } (e)
                    }
                }
                dt { "Trace" } dd {
                    @match (&trace_link, &job.trace_id) {
                        (Some(href), _) => a #trace-link href=(href) rel="noopener" target="_blank" { "Open in Jaeger" },
                        (None, Some(t)) => { code { (t) } span.muted { " (set JAEGER_UI_URL to link it)" } },
                        (None, None) => { span.muted { "none" } },
                    }
                }
            }
            @if in_dlq && user.can_write() {
                h2 { "Dead-lettered: retry or delete" }
                form.action method="post" action={"/dead-letters/" (job.job_id) "/retry"} data-confirm="Retry this job?" {
                    (csrf_field(&user))
                    input type="hidden" name="back" value={"/jobs/" (job.job_id)};
                    div { (reason_field("retry-reason")) }
                    button.primary #retry type="submit" { "Retry" }
                }
            } @else if in_dlq {
                p.muted #read-only-note { "Dead-lettered. A write token may retry or delete it." }
            }
        }
        h2 { "Status timeline" }
        div.panel {
            ol.timeline #timeline {
                @for e in &history {
                    li data-to=(e.to_status) {
                        (when(e.at)) " "
                        @if let Some(from) = &e.from_status { (status_badge(from)) " → " }
                        (status_badge(&e.to_status)) " "
                        span.muted { "by " (e.actor) }
                        @if let Some(reason) = e.detail.get("reason").and_then(Value::as_str) { " — " (reason) }
                        @if let Some(error) = e.detail.get("error").and_then(Value::as_str) { " — " span.error-text { (error) } }
                    }
                }
            }
        }
        h2 { "Stages per attempt" }
        @let by_attempt = attempts(&stages);
        @if by_attempt.is_empty() {
            p.muted { "No stage has run yet." }
        }
        @for (attempt, bars) in by_attempt.iter().rev() {
            section.panel.attempt data-attempt=(attempt) {
                h3 { "Attempt " (attempt) }
                (svg(waterfall(&format!("Attempt {attempt}: stage durations"), bars).into_string()))
                @let failed: Vec<&Bar> = bars.iter().filter(|b| b.failed).collect();
                @if !failed.is_empty() {
                    ul { @for b in failed { li.error-text { strong { (b.label) } ": " (b.error.as_deref().unwrap_or("failed")) } } }
                }
            }
        }
        h2 { "Extracted fields" }
        div.panel {
            @match &result {
                Some(r) => {
                    p {
                        "Classified as " strong { (r.pointer("/classification/document_type").map(text_of).unwrap_or_default()) }
                        @if let Some(c) = r.pointer("/classification/confidence").and_then(Value::as_f64) { " (" (format!("{c:.2}")) ")" }
                    }
                    (fields(r))
                    h3 { "Findings" }
                    @match r.get("findings").and_then(Value::as_array) {
                        Some(list) if !list.is_empty() => ul #findings { @for f in list {
                            li { strong { (f.get("rule").map(text_of).unwrap_or_default()) } " (" (f.get("severity").map(text_of).unwrap_or_default()) "): "
                                 (f.get("message").map(text_of).unwrap_or_default()) }
                        } },
                        _ => p.muted { "No findings." },
                    }
                },
                None => p.muted { "No result yet (a job has one once it completes)." },
            }
            h3 { "Tickets" }
            @if tickets.is_empty() { p.muted { "No tickets." } } @else {
                ul #job-tickets { @for t in &tickets {
                    li { (status_badge(&t.status)) " " strong { (t.rule) } ": " (t.message)
                         " " a href={"/tickets?rule=" (crate::console::error::urlencode(&t.rule))} { "(tickets of this rule)" } }
                } }
            }
        }
    };
    Ok(crate::console::html(layout::page(&format!("Job {}", job.document.document_id), &user, Nav::Jobs, body)))
}
