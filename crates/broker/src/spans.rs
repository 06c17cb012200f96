//! Messaging spans, named and attributed by the OpenTelemetry messaging
//! conventions: a PRODUCER span per published message (its context travels
//! on in the message's headers) and a CONSUMER span per processed delivery.

use std::collections::BTreeMap;

use lapin::message::Delivery;
use opentelemetry::KeyValue;
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _};

use job_model::message::headers;

/// A PRODUCER span for one message, child of the context its headers carry
/// (the request or attempt that caused it), and the headers to publish it
/// with: the same, with this span's context in place of the parent's.
pub fn producer_span(
    message_headers: &BTreeMap<String, String>,
    exchange: &str,
    routing_key: &str,
) -> (BoxedSpan, BTreeMap<String, String>) {
    let parent = telemetry::context_from_map(message_headers);
    let tracer = opentelemetry::global::tracer("docflow");
    let mut attributes = vec![
        KeyValue::new("messaging.system", "rabbitmq"),
        KeyValue::new("messaging.operation.type", "send"),
        KeyValue::new("messaging.destination.name", exchange.to_owned()),
        KeyValue::new("messaging.rabbitmq.destination.routing_key", routing_key.to_owned()),
    ];
    if let Some(job_id) = message_headers.get(headers::JOB_ID) {
        attributes.push(KeyValue::new("messaging.message.id", job_id.clone()));
        attributes.push(KeyValue::new("docflow.job_id", job_id.clone()));
    }
    let span = tracer
        .span_builder(format!("publish {exchange}"))
        .with_kind(SpanKind::Producer)
        .with_attributes(attributes)
        .start_with_context(&tracer, &parent);
    let cx = opentelemetry::Context::new().with_remote_span_context(span.span_context().clone());
    let mut out = message_headers.clone();
    if span.span_context().is_valid() {
        out.extend(telemetry::headers_for(&cx));
    }
    (span, out)
}

/// The trace context a delivery carries (its producer's span).
pub fn delivery_context(delivery: &Delivery) -> opentelemetry::Context {
    telemetry::context_from_amqp(delivery.properties.headers().as_ref())
}

/// A CONSUMER span for processing one delivery from `queue`, child of the
/// delivery's producer span; it ends when dropped.
pub fn consumer_span(delivery: &Delivery, queue: &str) -> BoxedSpan {
    let tracer = opentelemetry::global::tracer("docflow");
    let mut attributes = vec![
        KeyValue::new("messaging.system", "rabbitmq"),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.destination.name", queue.to_owned()),
        KeyValue::new("messaging.rabbitmq.destination.routing_key", delivery.routing_key.to_string()),
    ];
    if let Some(id) = delivery.properties.message_id() {
        attributes.push(KeyValue::new("messaging.message.id", id.to_string()));
    }
    tracer
        .span_builder(format!("process {queue}"))
        .with_kind(SpanKind::Consumer)
        .with_attributes(attributes)
        .start_with_context(&tracer, &delivery_context(delivery))
}
