//! The OpenAPI document, generated from the handlers' annotations: every
//! route registered through [`crate::startup::routes`] appears in it
//! (served by `service_common::openapi::openapi_json`).

use service_common::openapi::BearerScheme;
use utoipa::OpenApi;

const SECURITY: BearerScheme = BearerScheme {
    name: "admin_token",
    description: "An ADMIN_TOKENS entry: read tokens may list and inspect, write tokens may also change",
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "docflow dlq-admin",
        description = "Inspect, group, retry, delete and purge dead-lettered jobs. Every change needs a reason and is audited."
    ),
    modifiers(&SECURITY),
    tags(
        (name = "dlq", description = "The dead-letter queue: jobs and poison messages"),
        (name = "audit", description = "Who changed what, and why"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;
