//! Probes and metrics: no token needed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use job_model::{JobPriority, JobStatus};
use service_common::health::{self, Check, Readiness};

use crate::metrics::{PriorityLabels, QuantileLabels, StateLabels};
use crate::state::AppState;

#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    health::healthz().await
}

/// Ready when Postgres answers. The broker is reported but not required:
/// reports are served from Postgres while the consumer reconnects.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready (or degraded: the event consumer has no broker connection)", body = Readiness),
        (status = 503, description = "Postgres unreachable", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = health::check_postgres(&state.pool).await;
    let connected = state.consumer_connected.load(Ordering::Relaxed);
    let rabbitmq = Check {
        name: "rabbitmq",
        ok: connected,
        required: false,
        detail: (!connected).then(|| "the event consumer is not connected; events wait in the queue".to_owned()),
    };
    health::readiness_response(vec![postgres, rabbitmq])
}

/// Reads the state gauges from Postgres, bounded so a slow database cannot
/// hang a scrape (the gauges then keep their last values).
async fn sample_gauges(state: &AppState) -> job_store::StoreResult<()> {
    // Every (priority, state) is set, to 0 when no row counts it, so a
    // queue that empties reads 0 rather than its last count.
    let counts = job_store::stats::queued_and_processing(&state.pool).await?;
    for priority in JobPriority::ALL {
        for (status, label) in [(JobStatus::Queued, "waiting"), (JobStatus::Processing, "running")] {
            let n = counts
                .iter()
                .find(|(s, p, _)| s == status.as_str() && *p == priority.value())
                .map_or(0, |(_, _, n)| *n);
            state
                .metrics
                .queue_jobs
                .get_or_create(&StateLabels { priority: priority.routing_key(), state: label })
                .set(n);
        }
    }
    let oldest = job_store::stats::queued_now(&state.pool).await?;
    for priority in JobPriority::ALL {
        let age = oldest.get(&priority.value()).and_then(|(_, age)| *age).unwrap_or(0.0);
        state.metrics.oldest_queued_age.get_or_create(&PriorityLabels { priority: priority.routing_key() }).set(age);
    }
    let window = crate::report::load_window(&state.pool, i64::from(state.alerts.alert_window_minutes)).await?;
    for priority in JobPriority::ALL {
        let wait = window.executions.wait.get(&priority.value());
        for (quantile, q) in [("0.5", 0.5), ("0.95", 0.95)] {
            let seconds = wait.and_then(|w| w.sketch.quantile_ms(q)).map_or(0.0, |ms| ms / 1000.0);
            state
                .metrics
                .recent_queue_wait
                .get_or_create(&QuantileLabels { priority: priority.routing_key(), quantile })
                .set(seconds);
        }
    }
    Ok(())
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state
        .metrics_throttle
        .sample(|| async {
            match tokio::time::timeout(Duration::from_secs(2), sample_gauges(&state)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "sampling queue gauges failed"),
                Err(_) => tracing::warn!("sampling queue gauges timed out"),
            }
        })
        .await;
    service_common::metrics::render(&state.registry)
}
