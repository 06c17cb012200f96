//! Probes and metrics: no token needed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use service_common::health::{self, Check, Readiness};

use crate::metrics::KindLabels;
use crate::state::AppState;

#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    health::healthz().await
}

/// Ready when Postgres answers: it holds the DLQ, and every read and change
/// needs it. The broker is reported but not required: retries wait in the
/// outbox and dead letters on `jobs.dlq` until it is back.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready (or degraded: broker away)", body = Readiness),
        (status = 503, description = "Postgres unreachable", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = health::check_postgres(&state.pool).await;
    let relay = state.relay.stats().connected.load(Ordering::Relaxed);
    let importer = state.importer_connected.load(Ordering::Relaxed);
    let detail = match (relay, importer) {
        (true, true) => None,
        (false, true) => Some("outbox relay has no broker connection; retries wait in Postgres".to_owned()),
        (true, false) => Some("jobs.dlq importer is not consuming; dead letters wait on the queue".to_owned()),
        (false, false) => Some("no broker connection; retries wait in Postgres, dead letters on the queue".to_owned()),
    };
    let rabbitmq = Check { name: "rabbitmq", ok: relay && importer, required: false, detail };
    health::readiness_response(vec![postgres, rabbitmq])
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Sampled here so every replica reports the DLQ as Postgres holds it.
    state
        .metrics_throttle
        .sample(|| async {
            let sampled = tokio::time::timeout(Duration::from_secs(2), job_store::dlq::items::stats(&state.pool)).await;
            if let Ok(Ok(stats)) = sampled {
                state.metrics.dlq_size.get_or_create(&KindLabels { kind: "job" }).set(stats.jobs);
                state.metrics.dlq_size.get_or_create(&KindLabels { kind: "poison" }).set(stats.poison);
                let age = match (stats.oldest, stats.now) {
                    (Some(oldest), Some(now)) => (now - oldest).num_milliseconds().max(0) as f64 / 1000.0,
                    _ => 0.0,
                };
                state.metrics.oldest_age_seconds.set(age);
            }
        })
        .await;
    service_common::metrics::render(&state.registry)
}
