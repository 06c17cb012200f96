//! What every service's OpenAPI document shares: the Bearer security scheme
//! and the handler that serves the document.

use actix_web::{HttpResponse, get, web};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Adds a Bearer security scheme under `name` (use it in `modifiers(...)`).
pub struct BearerScheme {
    pub name: &'static str,
    pub description: &'static str,
}

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            self.name,
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(self.description)).build(),
            ),
        );
    }
}

/// The built document, as app data for [`openapi_json`].
pub struct Document(pub utoipa::openapi::OpenApi);

#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json"))
)]
#[get("/api/openapi.json")]
pub async fn openapi_json(doc: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok().json(&doc.0)
}
