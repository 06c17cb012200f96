//! Prometheus exposition and what every service exports: HTTP metrics,
//! `docflow_build_info` and the standard `process_*` metrics.
//!
//! Conventions the services keep (see deploy/prometheus/alerts.yml):
//! one name per fact, exported by the one service that owns it; label
//! values in lower case (`priority="high"`, `outcome="completed"`; HTTP
//! methods excepted, which HTTP spells in capitals); durations in seconds
//! on [`duration_buckets`] wherever the same thing is timed twice; a whole
//! attempt and its stages under different names, so no sum over a label
//! counts anything twice.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route pattern, never the raw path, to keep cardinality bounded.
    pub route: String,
    pub status: u16,
}

/// Buckets for job and stage durations, the same in the worker (what one
/// process ran) and metrics-tracker (what every worker reported), so their
/// quantiles can be compared: 1 ms to about 65 s, doubling.
pub fn duration_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 17)
}

/// Registers what every service exports whatever it does: its HTTP
/// metrics, `docflow_build_info{service, version}` (1; alerts use it to
/// notice a service that is gone, and joins to name the service behind a
/// series) and the `process_*` metrics, read from `/proc/self` at scrape.
pub fn register_service(registry: &mut Registry, service: &'static str, version: &'static str) -> HttpMetrics {
    registry.register(
        "docflow_build",
        "The running binary: which service, which version (always 1)",
        prometheus_client::metrics::info::Info::new(vec![("service", service), ("version", version)]),
    );
    registry.register_collector(Box::new(crate::process_metrics::ProcessCollector::new()));
    HttpMetrics::register(registry)
}

/// HTTP server metrics, following Prometheus naming conventions.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    pub requests: Family<HttpLabels, Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "docflow_http_request_duration_seconds",
            "HTTP requests by route and status, and how long they took",
            requests.clone(),
        );
        HttpMetrics { requests }
    }
}

/// Middleware recording every request in [`HttpMetrics`] (from app data).
pub async fn record_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let labels = HttpLabels { method, route, status: response.status().as_u16() };
        metrics.requests.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// Renders a registry in the OpenMetrics text format.
pub fn render(registry: &Registry) -> HttpResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => {
            HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(body)
        }
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// A registry shared between the handlers that record and the endpoint that renders.
pub type SharedRegistry = Arc<Registry>;

/// The outbox relay's counters, read from its atomics at scrape time.
pub fn encode_relay_stats(
    stats: &broker::RelayStats,
    encoder: &mut prometheus_client::encoding::DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    use std::sync::atomic::Ordering;

    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;

    let counters = [
        ("docflow_outbox_published", "Outbox messages confirmed by the broker", &stats.published),
        (
            "docflow_outbox_handed_over",
            "Of the published messages, those this process committed and published at once, with no poll",
            &stats.handed_over,
        ),
        (
            "docflow_outbox_handovers_dropped",
            "Handovers the relay was too far behind to take; their messages went out after their claim ran out",
            &stats.handovers_dropped,
        ),
        (
            "docflow_outbox_publish_failures",
            "Outbox batches that could not be published (they stay and are retried)",
            &stats.publish_failures,
        ),
        (
            "docflow_outbox_unroutable",
            "Outbox publishes the broker returned unroutable (each is tried again after a backoff)",
            &stats.unroutable,
        ),
        (
            "docflow_outbox_parked",
            "Outbox messages parked on the dead-letter exchange after their last unroutable try",
            &stats.parked,
        ),
    ];
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value.load(Ordering::Relaxed));
        counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
    }
    let connected = ConstGauge::new(i64::from(stats.connected.load(Ordering::Relaxed)));
    connected.encode(encoder.encode_descriptor(
        "docflow_outbox_broker_connected",
        "1 while the outbox relay holds a broker connection",
        None,
        connected.metric_type(),
    )?)?;
    Ok(())
}

/// Registers an outbox relay's counters (every service that runs a relay).
#[derive(Debug)]
pub struct RelayCollector(pub Arc<broker::RelayStats>);

impl prometheus_client::collector::Collector for RelayCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_relay_stats(&self.0, &mut encoder)
    }
}

/// Gauges sampled from Postgres at scrape time, refreshed at most once per
/// interval (`METRICS_SAMPLE_INTERVAL_MS`). `/metrics` answers without a
/// token, so a scraper, or anyone, calling it in a loop must not become
/// load on the database: between refreshes, and while another scrape is
/// sampling, a scrape renders the last values.
#[derive(Debug)]
pub struct SampleThrottle {
    interval: std::time::Duration,
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl SampleThrottle {
    pub fn new(interval: std::time::Duration) -> Self {
        SampleThrottle { interval, last: tokio::sync::Mutex::new(None) }
    }

    /// Runs `sample` unless it ran less than the interval ago or is running now.
    pub async fn sample<F, Fut>(&self, sample: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let Ok(mut last) = self.last.try_lock() else { return };
        if last.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        sample().await;
        *last = Some(Instant::now());
    }
}
