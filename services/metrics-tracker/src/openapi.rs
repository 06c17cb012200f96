//! The OpenAPI document, generated from the handlers' annotations: every
//! route registered through [`crate::startup::routes`] appears in it.

use service_common::openapi::BearerScheme;
use utoipa::OpenApi;

const SECURITY: BearerScheme =
    BearerScheme { name: "admin_token", description: "An ADMIN_TOKENS entry (role read or write)" };

#[derive(OpenApi)]
#[openapi(
    info(
        title = "docflow metrics-tracker",
        description = "Execution metrics of the docflow pipeline: reports, stage statistics, bottlenecks, execution traces, queues and alerts."
    ),
    modifiers(&SECURITY),
    tags(
        (name = "metrics", description = "Reports from the per-minute rollups"),
        (name = "executions", description = "Execution traces from the raw rows"),
        (name = "queues", description = "Queue state from Postgres and RabbitMQ"),
        (name = "alerts", description = "Alerts active now"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;
