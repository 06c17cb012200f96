//! `GET /api/queues`.

use actix_web::{HttpResponse, get, web};
use job_model::QueueStats;
use serde::Serialize;
use service_common::ApiError;
use service_common::admin_auth::Reader;
use service_common::error::ErrorBody;

use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuesResponse {
    /// jobs.high, jobs.normal, jobs.low, then jobs.dlq (no priority). Job
    /// counts come from Postgres; messages_ready and consumer_count from
    /// RabbitMQ, null when it cannot be reached.
    pub queues: Vec<QueueStats>,
}

#[utoipa::path(
    tag = "queues",
    responses(
        (status = 200, description = "Job counts per status and broker counters, per queue", body = QueuesResponse),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
#[get("/api/queues")]
pub async fn queues(_reader: Reader, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let queues =
        crate::queues::queue_stats(&state.pool, &state.topology, &state.probe).await.map_err(ApiError::store)?;
    Ok(HttpResponse::Ok().json(QueuesResponse { queues }))
}
