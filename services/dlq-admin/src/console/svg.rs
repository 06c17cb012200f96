//! Charts drawn on the server as inline SVG (no chart library, no
//! JavaScript): a stage waterfall per attempt, the throughput of recent
//! hours, stage percentiles against their SLA targets. Text goes through
//! maud, so it is escaped like the rest of the page.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use crate::console::layout::ms;

/// One bar of a waterfall: where it starts and how long it took.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub failed: bool,
    pub error: Option<String>,
}

const LABEL_W: f64 = 150.0;
const AREA_W: f64 = 520.0;
const VALUE_W: f64 = 80.0;
const ROW_H: f64 = 24.0;

/// Stage bars to scale: x is time since the attempt's first stage began.
pub fn waterfall(title: &str, bars: &[Bar]) -> Markup {
    let total = bars.iter().map(|b| b.offset_ms + b.duration_ms).fold(0.0_f64, f64::max).max(0.001);
    let height = ROW_H * bars.len() as f64 + 30.0;
    let width = LABEL_W + AREA_W + VALUE_W;
    let x = |v: f64| LABEL_W + v / total * AREA_W;
    html! {
        svg.waterfall role="img" aria-label=(title) viewBox={"0 0 " (width) " " (height)} width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @for (i, b) in bars.iter().enumerate() {
                @let y = ROW_H * i as f64 + 4.0;
                g.stage data-stage=(b.label) data-failed=(b.failed) {
                    text x=(LABEL_W - 8.0) y=(y + 14.0) text-anchor="end" font-size="12" fill="#1d2330" { (b.label) }
                    rect x=(LABEL_W) y=(y) width=(AREA_W) height=(ROW_H - 6.0) fill="#f0f2f5" {}
                    rect x=(x(b.offset_ms)) y=(y) width=((b.duration_ms / total * AREA_W).max(1.5)) height=(ROW_H - 6.0)
                        fill=(if b.failed { "#b3261e" } else { "#1f5fbf" }) {
                        title { (b.label) ": " (ms(Some(b.duration_ms))) @if let Some(e) = &b.error { " — " (e) } }
                    }
                    text x=(LABEL_W + AREA_W + 6.0) y=(y + 14.0) font-size="12" fill="#1d2330" { (ms(Some(b.duration_ms))) }
                }
            }
            @let axis_y = ROW_H * bars.len() as f64 + 8.0;
            line x1=(LABEL_W) x2=(LABEL_W + AREA_W) y1=(axis_y) y2=(axis_y) stroke="#9aa2b1" {}
            text x=(LABEL_W) y=(axis_y + 16.0) font-size="11" fill="#5a6272" { "0" }
            text x=(LABEL_W + AREA_W) y=(axis_y + 16.0) font-size="11" fill="#5a6272" text-anchor="end" { (ms(Some(total))) }
        }
    }
}

/// One time step of the throughput chart.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub completed: i64,
    pub failed: i64,
    pub dlq: i64,
    pub retrying: i64,
}

/// Stacked bars of attempts per step, by outcome.
pub fn throughput(steps: &[Step]) -> Markup {
    let (w, h, left, bottom, top) = (640.0, 236.0, 44.0, 24.0, 26.0);
    let plot_h = h - bottom - top;
    let max = steps.iter().map(|s| s.completed + s.failed + s.dlq + s.retrying).max().unwrap_or(0).max(1) as f64;
    let n = steps.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let colours = [("completed", "#1b7a3d"), ("retrying", "#d08a00"), ("failed", "#7a3db3"), ("dlq", "#b3261e")];
    let label_every = (steps.len() / 6).max(1);
    // Each step's segments, bottom up: (y, height, colour).
    let stacks: Vec<Vec<(f64, f64, &str)>> = steps
        .iter()
        .map(|s| {
            let mut y = top + plot_h;
            [s.completed, s.retrying, s.failed, s.dlq]
                .iter()
                .zip(colours)
                .filter(|(v, _)| **v > 0)
                .map(|(v, (_, colour))| {
                    let bar = *v as f64 / max * plot_h;
                    y -= bar;
                    (y, bar, colour)
                })
                .collect()
        })
        .collect();
    html! {
        svg.chart role="img" aria-label="Attempts finished per time step, by outcome" viewBox={"0 0 " (w) " " (h)}
            width=(w) height=(h) xmlns="http://www.w3.org/2000/svg" {
            title { "Attempts finished per time step, by outcome" }
            line x1=(left) x2=(w - 8.0) y1=(top + plot_h) y2=(top + plot_h) stroke="#9aa2b1" {}
            text x=(left - 6.0) y=(top + 6.0) text-anchor="end" font-size="11" fill="#5a6272" { (max as i64) }
            text x=(left - 6.0) y=(top + plot_h) text-anchor="end" font-size="11" fill="#5a6272" { "0" }
            @for (i, (s, segments)) in steps.iter().zip(&stacks).enumerate() {
                @let x = left + slot * i as f64 + slot * 0.1;
                g {
                    title { (s.at.format("%H:%M")) ": " (s.completed) " completed, " (s.retrying) " retrying, "
                            (s.failed) " failed, " (s.dlq) " dead-lettered" }
                    @for (y, height, colour) in segments {
                        rect x=(x) y=(y) width=((slot * 0.8).max(1.0)) height=(height) fill=(colour) {}
                    }
                }
                @if i % label_every == 0 {
                    text x=(x) y=(h - 6.0) font-size="11" fill="#5a6272" { (s.at.format("%H:%M")) }
                }
            }
            @for (j, (name, colour)) in colours.iter().enumerate() {
                rect x=(left + 8.0 + 96.0 * j as f64) y="2" width="10" height="10" fill=(colour) {}
                text x=(left + 22.0 + 96.0 * j as f64) y="11" font-size="11" fill="#1d2330" { (name) }
            }
        }
    }
}

/// One stage's percentiles and target.
#[derive(Debug, Clone)]
pub struct StageLatency {
    pub stage: String,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub target: Option<f64>,
}

/// Horizontal bars per stage (p99 light, p95 mid, p50 dark) with the SLA
/// target as a tick.
pub fn stage_latencies(stages: &[StageLatency]) -> Markup {
    let (label_w, area_w, row) = (140.0, 420.0, 26.0);
    let w = label_w + area_w + 90.0;
    let h = row * stages.len() as f64 + 26.0;
    let max = stages.iter().flat_map(|s| [s.p99, s.target]).flatten().fold(0.0_f64, f64::max).max(0.001);
    let x = |v: f64| label_w + v / max * area_w;
    html! {
        svg.chart role="img" aria-label="Stage latency percentiles against SLA targets" viewBox={"0 0 " (w) " " (h)}
            width=(w) height=(h) xmlns="http://www.w3.org/2000/svg" {
            title { "Stage latency: p50, p95, p99 and the SLA target" }
            @for (i, s) in stages.iter().enumerate() {
                @let y = row * i as f64 + 4.0;
                g data-stage=(s.stage) {
                    title { (s.stage) ": p50 " (ms(s.p50)) ", p95 " (ms(s.p95)) ", p99 " (ms(s.p99)) ", target " (ms(s.target)) }
                    text x=(label_w - 8.0) y=(y + 13.0) text-anchor="end" font-size="12" fill="#1d2330" { (s.stage) }
                    @for (v, colour) in [(s.p99, "#c9d7f0"), (s.p95, "#7fa3dc"), (s.p50, "#1f5fbf")] {
                        @if let Some(v) = v {
                            rect x=(label_w) y=(y) width=((v / max * area_w).max(1.0)) height=(row - 8.0) fill=(colour) {}
                        }
                    }
                    @if let Some(t) = s.target {
                        line x1=(x(t)) x2=(x(t)) y1=(y - 2.0) y2=(y + row - 6.0) stroke="#b3261e" stroke-width="2" {}
                    }
                    text x=(label_w + area_w + 6.0) y=(y + 13.0) font-size="11" fill="#1d2330" { "p95 " (ms(s.p95)) }
                }
            }
            text x=(label_w) y=(h - 4.0) font-size="11" fill="#5a6272" { "0" }
            text x=(label_w + area_w) y=(h - 4.0) font-size="11" fill="#5a6272" text-anchor="end" { (ms(Some(max))) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_to_scale_and_text_is_escaped() {
        let bars = vec![
            Bar { label: "upload".into(), offset_ms: 0.0, duration_ms: 10.0, failed: false, error: None },
            Bar { label: "<x>".into(), offset_ms: 10.0, duration_ms: 30.0, failed: true, error: Some("a&b".into()) },
        ];
        let svg = waterfall("attempt 1", &bars).into_string();
        // 40 ms in all over 520 px: the second bar starts at 130 px and is 390 px wide.
        assert!(svg.contains(r#"x="280" y="28" width="390""#), "{svg}");
        assert!(svg.contains("&lt;x&gt;") && svg.contains("a&amp;b") && !svg.contains("<x>"));
    }
}
