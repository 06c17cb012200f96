//! No spans for probes and scrapes: a Kubernetes probe every few seconds and
//! a Prometheus scrape every 15 s per pod would be most of the traces, and
//! tell nothing. Every other span is left to the sampler the SDK chose
//! (OTEL_TRACES_SAMPLER, by default parent-based always-on).

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};
use tracing::Metadata;

/// Crates whose `tracing` spans and events are the transport's own (the OTLP
/// exporter's gRPC and HTTP stack, the AMQP and HTTP client internals):
/// as spans they would be noise in every trace, and the exporter's would
/// export themselves.
const TRANSPORT_TARGETS: [&str; 7] = ["opentelemetry", "h2", "hyper", "tonic", "tower", "reqwest", "rustls"];

/// Which `tracing` spans and events become OpenTelemetry spans and span
/// events: all but the transport's own. (Not by level: with spans below
/// INFO left out of this layer, trace context stopped following some
/// stage and attempt spans across awaits in the tests, so the level is left
/// to the sampler and the collector.)
pub fn exported(meta: &Metadata<'_>) -> bool {
    !TRANSPORT_TARGETS.iter().any(|t| {
        meta.target()
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

/// Drops SERVER spans whose route is a probe (`/health*`, `/ready*`,
/// `/live*`) or the metrics scrape (`/metrics`).
#[derive(Debug, Clone)]
pub struct SkipProbes {
    inner: Box<dyn ShouldSample>,
}

impl SkipProbes {
    pub fn new(inner: Box<dyn ShouldSample>) -> Self {
        SkipProbes { inner }
    }
}

/// Whether an HTTP route (the pattern actix matched, `http.route`) is a
/// probe or the metrics endpoint.
pub fn is_probe_route(route: &str) -> bool {
    let route = route.trim_end_matches('/');
    ["/health", "/ready", "/live"].iter().any(|p| route.starts_with(p)) || route == "/metrics"
}

impl ShouldSample for SkipProbes {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let probe = *span_kind == SpanKind::Server
            && attributes.iter().any(|kv| {
                (kv.key.as_str() == "http.route" || kv.key.as_str() == "url.path")
                    && is_probe_route(kv.value.as_str().as_ref())
            });
        if probe {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: parent_context
                    .map(|cx| cx.span().span_context().trace_state().clone())
                    .unwrap_or_default(),
            };
        }
        self.inner.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_scrapes_are_recognised() {
        for r in ["/healthz", "/health", "/health/live", "/readyz", "/ready", "/livez", "/metrics", "/metrics/"] {
            assert!(is_probe_route(r), "{r}");
        }
        for r in ["/api/process-async", "/api/metrics/report", "/", "default", "/api/job/{job_id}/status"] {
            assert!(!is_probe_route(r), "{r}");
        }
    }

    #[test]
    fn only_server_spans_of_probe_routes_are_dropped() {
        let s = SkipProbes::new(Box::new(opentelemetry_sdk::trace::Sampler::AlwaysOn));
        let route = |r: &'static str| vec![KeyValue::new("http.route", r)];
        let decide = |kind: SpanKind, attrs: &[KeyValue]| {
            s.should_sample(None, TraceId::from(7u128), "GET x", &kind, attrs, &[]).decision
        };
        assert_eq!(decide(SpanKind::Server, &route("/readyz")), SamplingDecision::Drop);
        assert_eq!(decide(SpanKind::Server, &route("/metrics")), SamplingDecision::Drop);
        assert_eq!(decide(SpanKind::Server, &route("/api/dlq")), SamplingDecision::RecordAndSample);
        assert_eq!(decide(SpanKind::Internal, &route("/metrics")), SamplingDecision::RecordAndSample);
    }
}
