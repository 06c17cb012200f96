//! Messaging spans, named and attributed by the OpenTelemetry messaging
//! conventions (and their RabbitMQ page): a PRODUCER span per published
//! message (its context travels on in the message's headers) and a
//! CONSUMER span per processed delivery.
//!
//! For RabbitMQ the destination is the exchange: `messaging.destination.name`
//! is the exchange a message was published to (on a delivery, the exchange
//! it came through), the routing key goes in
//! `messaging.rabbitmq.destination.routing_key`, and the queue a consumer
//! reads from in `messaging.destination.subscription.name`. Span names are
//! `{messaging.operation.name} {destination}`. docflow's own attributes are
//! under `docflow.*`.

use std::collections::BTreeMap;

use lapin::message::Delivery;
use opentelemetry::KeyValue;
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _};

use job_model::message::headers;

/// `messaging.operation.name` of a publish (AMQP basic.publish).
pub const PUBLISH: &str = "publish";
/// `messaging.operation.name` of handling one delivery.
pub const PROCESS: &str = "process";

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
        KeyValue::new("messaging.operation.name", PUBLISH),
        KeyValue::new("messaging.operation.type", "send"),
        KeyValue::new("messaging.destination.name", exchange.to_owned()),
        KeyValue::new("messaging.rabbitmq.destination.routing_key", routing_key.to_owned()),
    ];
    if let Some(job_id) = message_headers.get(headers::JOB_ID) {
        attributes.push(KeyValue::new("messaging.message.id", job_id.clone()));
        attributes.push(KeyValue::new("docflow.job_id", job_id.clone()));
    }
    let span = tracer
        .span_builder(format!("{PUBLISH} {exchange}"))
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

/// The span name of processing a delivery: the exchange it came through
/// (RabbitMQ's destination), or the queue when it came straight to the
/// queue through the default exchange (whose name is empty).
fn process_name(delivery: &Delivery, queue: &str) -> String {
    let exchange = delivery.exchange.as_str();
    format!("{PROCESS} {}", if exchange.is_empty() { queue } else { exchange })
}

/// A CONSUMER span for processing one delivery from `queue`, child of the
/// delivery's producer span; it ends when dropped. For handlers that take
/// deliveries in batches (one span each, none of them current).
pub fn consumer_span(delivery: &Delivery, queue: &str) -> BoxedSpan {
    let tracer = opentelemetry::global::tracer("docflow");
    let mut attributes = vec![
        KeyValue::new("messaging.system", "rabbitmq"),
        KeyValue::new("messaging.operation.name", PROCESS),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.destination.name", delivery.exchange.to_string()),
        KeyValue::new("messaging.destination.subscription.name", queue.to_owned()),
        KeyValue::new("messaging.rabbitmq.destination.routing_key", delivery.routing_key.to_string()),
        KeyValue::new("messaging.rabbitmq.message.delivery_tag", delivery.delivery_tag as i64),
    ];
    if let Some(id) = delivery.properties.message_id() {
        attributes.push(KeyValue::new("messaging.message.id", id.to_string()));
    }
    tracer
        .span_builder(process_name(delivery, queue))
        .with_kind(SpanKind::Consumer)
        .with_attributes(attributes)
        .start_with_context(&tracer, &delivery_context(delivery))
}

/// The same CONSUMER span as a `tracing` span, for a handler that processes
/// one delivery at a time: instrumenting the work with it makes the work's
/// own spans and log lines its children. The `docflow.*` fields are filled
/// in by the handler as it learns them (`Span::record`).
pub fn consumer_tracing_span(delivery: &Delivery, queue: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "process",
        otel.name = process_name(delivery, queue),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        messaging.system = "rabbitmq",
        messaging.operation.name = PROCESS,
        messaging.operation.type = "process",
        messaging.destination.name = %delivery.exchange,
        messaging.destination.subscription.name = queue,
        messaging.rabbitmq.destination.routing_key = %delivery.routing_key,
        messaging.rabbitmq.message.delivery_tag = delivery.delivery_tag,
        messaging.message.id = tracing::field::Empty,
        docflow.job_id = tracing::field::Empty,
        docflow.attempt = tracing::field::Empty,
        docflow.priority = tracing::field::Empty,
        docflow.outcome = tracing::field::Empty,
    );
    if let Some(id) = delivery.properties.message_id() {
        span.record("messaging.message.id", id.as_str());
    }
    telemetry::set_parent(&span, delivery_context(delivery));
    span
}
