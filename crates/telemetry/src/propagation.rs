//! W3C trace context in AMQP headers and outbox rows, so a trace continues
//! across every RabbitMQ hop (OpenTelemetry messaging conventions).

use std::collections::{BTreeMap, HashMap};

use lapin::types::{AMQPValue, FieldTable};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// `traceparent` (and `tracestate`) for a context, as string headers.
pub fn headers_for(cx: &Context) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, &mut MapInjector(&mut headers)));
    headers
}

/// The current context: the current tracing span's, or else the
/// OpenTelemetry context attached to the task (an HTTP server span).
pub fn current_context() -> Context {
    let span = tracing::Span::current();
    if span.is_none() { Context::current() } else { span.context() }
}

/// The current context as headers.
pub fn current_context_headers() -> BTreeMap<String, String> {
    headers_for(&current_context())
}

/// The trace id of the current context, if it has a valid one.
pub fn trace_id() -> Option<String> {
    let cx = current_context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Makes `cx` (a remote parent, e.g. a delivery's producer span) the parent
/// of a `tracing` span that has not been entered yet.
pub fn set_parent(span: &tracing::Span, cx: Context) {
    // Fails only when the span is disabled or already started: then there
    // is no parent to set, and the span stays as it is.
    let _ = span.set_parent(cx);
}

/// A context from string headers (an outbox row's).
pub fn context_from_map(headers: &BTreeMap<String, String>) -> Context {
    let map: HashMap<String, String> = headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&map))
}

struct AmqpExtractor<'a>(&'a BTreeMap<lapin::types::ShortString, AMQPValue>);

impl Extractor for AmqpExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.as_str() == key).and_then(|(_, v)| match v {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            _ => None,
        })
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// A context from a delivery's headers (empty when it carries none).
pub fn context_from_amqp(headers: Option<&FieldTable>) -> Context {
    match headers {
        Some(table) => opentelemetry::global::get_text_map_propagator(|p| p.extract(&AmqpExtractor(table.inner()))),
        None => Context::new(),
    }
}
