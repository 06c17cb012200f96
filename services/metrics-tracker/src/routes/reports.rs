//! `GET /api/metrics/report`, `/api/metrics/stages`, `/api/metrics/bottlenecks`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use service_common::admin_auth::Reader;
use service_common::error::ErrorBody;
use service_common::{ApiError, ErrorCode};

use crate::report::{self, BottleneckReport, Report, StagesReport};
use crate::routes::{hours, query};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// The window: this many hours before the current minute, plus the
    /// current minute. 1 up to the rollup retention; 24 by default.
    hours: Option<u32>,
}

#[utoipa::path(
    tag = "metrics",
    params(WindowQuery),
    responses(
        (status = 200, description = "Counts, success rate, durations, stage breakdown, SLA compliance and queue wait per priority, from the rollups", body = Report),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/metrics/report")]
pub async fn metrics_report(
    _reader: Reader,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q: WindowQuery = query(&req)?;
    let hours = hours(q.hours, state.max_report_hours)?;
    let report = report::report(&state.pool, hours, &state.sla).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(
    tag = "metrics",
    params(WindowQuery),
    responses(
        (status = 200, description = "Per-stage min, avg, p50, p95, p99, max, count and failure rate", body = StagesReport),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/metrics/stages")]
pub async fn metrics_stages(
    _reader: Reader,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q: WindowQuery = query(&req)?;
    let hours = hours(q.hours, state.max_report_hours)?;
    let data = report::load_window(&state.pool, i64::from(hours) * 60).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(report::compute_stages(&data, hours, &state.sla)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BottleneckQuery {
    /// The window in hours, as for the report; 24 by default.
    hours: Option<u32>,
    /// Between 0 and 1; 0.85 by default. Each stage's dominance is its mean
    /// share of an execution's duration (`avg_percentage_of_total`); the
    /// cut-off is this quantile of those shares across the stages, with
    /// linear interpolation, and every stage at or above it is reported.
    /// With eight stages 0.85 reports the top one or two; 1 reports only the
    /// most dominant stage; 0 reports every stage.
    threshold_percentile: Option<f64>,
}

#[utoipa::path(
    tag = "metrics",
    params(BottleneckQuery),
    responses(
        (status = 200, description = "Stages whose latency dominates, with a recommendation each", body = BottleneckReport),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/metrics/bottlenecks")]
pub async fn metrics_bottlenecks(
    _reader: Reader,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q: BottleneckQuery = query(&req)?;
    let hours = hours(q.hours, state.max_report_hours)?;
    let threshold = q.threshold_percentile.unwrap_or(0.85);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ApiError::field(
            ErrorCode::InvalidQuery,
            "threshold_percentile",
            "threshold_percentile must be between 0 and 1",
        ));
    }
    let data = report::load_window(&state.pool, i64::from(hours) * 60).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(report::compute_bottlenecks(&data, hours, threshold, &state.sla)))
}
