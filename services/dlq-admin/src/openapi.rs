//! The OpenAPI document, generated from the handlers' annotations: every
//! route registered through [`crate::startup::routes`] appears in it.

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "docflow dlq-admin",
        description = "Inspect, group, retry, delete and purge dead-lettered jobs. Every change needs a reason and is audited."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "dlq", description = "The dead-letter queue: jobs and poison messages"),
        (name = "audit", description = "Who changed what, and why"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An ADMIN_TOKENS entry: read tokens may list and inspect, write tokens may also change",
                    ))
                    .build(),
            ),
        );
    }
}

/// The built document, shared with the handler that serves it.
pub struct Document(pub utoipa::openapi::OpenApi);

#[utoipa::path(tag = "operations", responses((status = 200, description = "This OpenAPI document", content_type = "application/json")))]
#[get("/api/openapi.json")]
pub async fn openapi_json(doc: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok().json(&doc.0)
}
