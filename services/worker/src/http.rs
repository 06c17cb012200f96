//! The worker's small HTTP server: probes and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, get, web};
use prometheus_client::registry::Registry;
use service_common::health::{self, Check};
use sqlx::PgPool;

pub struct HttpState {
    pub pool: PgPool,
    pub consuming: Arc<AtomicBool>,
    pub registry: Arc<Registry>,
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    health::healthz().await
}

/// Ready when Postgres answers and the consumers are attached: a worker that
/// cannot do either takes no work.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Consuming, and Postgres answers", body = service_common::health::Readiness),
        (status = 503, description = "Postgres or the broker unreachable", body = service_common::health::Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    let postgres = health::check_postgres(&state.pool).await;
    let consuming = state.consuming.load(Ordering::Relaxed);
    let rabbitmq = Check {
        name: "rabbitmq",
        ok: consuming,
        required: true,
        detail: (!consuming).then(|| "not consuming: the broker is unreachable".to_owned()),
    };
    health::readiness_response(vec![postgres, rabbitmq])
}

#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    service_common::metrics::render(&state.registry)
}

/// The worker's routes: probes, metrics and its OpenAPI document.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics).service(service_common::openapi::openapi_json);
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "docflow worker", description = "Health and metrics of a worker process; jobs reach it through RabbitMQ, not HTTP."),
    tags((name = "operations", description = "Probes, metrics and this document"))
)]
pub struct ApiDoc;
