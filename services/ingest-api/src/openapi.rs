//! The OpenAPI document, generated from the handlers' annotations: every
//! route registered through [`crate::startup::routes`] appears in it
//! (served by `service_common::openapi::openapi_json`).

use service_common::openapi::BearerScheme;
use utoipa::OpenApi;

const SECURITY: BearerScheme = BearerScheme { name: "api_key", description: "An INGEST_API_KEYS entry" };

#[derive(OpenApi)]
#[openapi(
    info(title = "docflow ingest-api", description = "Submit documents for asynchronous processing and track their jobs."),
    modifiers(&SECURITY),
    tags(
        (name = "jobs", description = "Submit documents and follow their jobs"),
        (name = "results", description = "What was found in a document, and the findings that need a person"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;
