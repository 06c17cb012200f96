//! Probes, metrics and the OpenAPI document: no API key needed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use service_common::health::{self, Check, Readiness};

use crate::state::AppState;

#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    health::healthz().await
}

/// Ready when Postgres answers. The broker is reported but not required:
/// the outbox keeps accepting jobs while it is away, which is the point of
/// having one, so an ingest pod should stay in rotation.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready (or degraded: broker away, jobs buffer in the outbox)", body = Readiness),
        (status = 503, description = "Postgres unreachable", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = health::check_postgres(&state.pool).await;
    let connected = state.relay.stats().connected.load(Ordering::Relaxed);
    let rabbitmq = Check {
        name: "rabbitmq",
        ok: connected,
        required: false,
        detail: (!connected).then(|| "outbox relay has no broker connection; jobs are buffered in Postgres".to_owned()),
    };
    health::readiness_response(vec![postgres, rabbitmq])
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Sampled here so a scrape shows the backlog even when nothing else asks.
    state
        .metrics_throttle
        .sample(|| async {
            if let Ok(Ok(backlog)) =
                tokio::time::timeout(Duration::from_secs(1), job_store::outbox::backlog(&state.pool)).await
            {
                state.metrics.outbox_backlog.set(backlog);
            }
        })
        .await;
    service_common::metrics::render(&state.registry)
}
