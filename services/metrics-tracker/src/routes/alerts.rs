//! `GET /api/alerts`.

use actix_web::{HttpResponse, get, web};
use chrono::Utc;
use service_common::ApiError;
use service_common::admin_auth::Reader;
use service_common::error::ErrorBody;

use crate::alerts::{self, AlertsResponse};
use crate::state::AppState;

#[utoipa::path(
    tag = "alerts",
    responses(
        (status = 200, description = "The alerts active now (queue depth, average duration, DLQ size, success rate)", body = AlertsResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/alerts")]
pub async fn active_alerts(_reader: Reader, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let inputs = alerts::inputs(&state.pool, &state.alerts).await.map_err(ApiError::store)?;
    let active = alerts::evaluate(&inputs, &state.topology, &state.alerts, &state.sla);
    Ok(HttpResponse::Ok().json(AlertsResponse {
        evaluated_at: Utc::now(),
        window_minutes: state.alerts.alert_window_minutes,
        alerts: active,
    }))
}
