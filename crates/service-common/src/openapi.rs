//! What every service's OpenAPI document shares: the Bearer security scheme,
//! the handler that serves the document, and the `/api/docs` page that
//! shows it (a vendored Redoc, nothing from a CDN).

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

/// Redoc's standalone bundle (npm `redoc` 2.5.4, MIT; licence texts beside
/// it), vendored so the docs page works with no CDN and nothing is fetched
/// at build time. The version is in the served path, so a browser may keep
/// it forever and a new version is a new URL.
const REDOC_JS: &[u8] = include_bytes!("../assets/redoc/redoc-2.5.4.standalone.js");

/// Where [`REDOC_JS`] is served.
pub const REDOC_JS_PATH: &str = "/api/docs/redoc-2.5.4.standalone.js";

/// The page: Redoc reading this service's `/api/openapi.json`. Both URLs are
/// relative to `/api/docs`, so the page also works behind a path prefix.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API docs</title>
</head>
<body>
<redoc spec-url="openapi.json" expand-responses="200,202"></redoc>
<script src="docs/redoc-2.5.4.standalone.js"></script>
</body>
</html>
"#;

/// Nothing but this service: Redoc injects its styles (inline) and runs its
/// search index in a worker from a `blob:` URL; its footer's logo on a CDN
/// is refused here rather than fetched.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-eval'; worker-src blob:; \
                        style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
                        connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /api/docs` (the viewer) and its script; plain actix routes, not in
/// the OpenAPI document they display. [`crate::http::serve`] adds them to
/// every service.
pub fn docs_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/docs", web::get().to(docs_page)).route(REDOC_JS_PATH, web::get().to(redoc_js));
}

async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", DOCS_CSP))
        .insert_header(("Cache-Control", "no-cache"))
        .body(DOCS_PAGE)
}

async fn redoc_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(REDOC_JS)
}
