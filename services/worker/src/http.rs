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

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    health::healthz().await
}

/// Ready when Postgres answers and the consumers are attached: a worker that
/// cannot do either takes no work.
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

#[get("/metrics")]
pub async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    service_common::metrics::render(&state.registry)
}
