//! The HTTP server every docflow service runs, built one way: a server span
//! per request (outermost), HTTP metrics, the routes registered through
//! utoipa so the OpenAPI document lists each of them, a JSON 404 for
//! anything else, and shutdown driven by the service (a cancellation
//! token), not by actix's own signal handling.

use std::net::TcpListener;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use opentelemetry_instrumentation_actix_web::RequestTracing;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::metrics::{HttpMetrics, record_http};
use crate::openapi::Document;
use crate::{ApiError, ErrorCode};

/// A service's routes, registered through utoipa's `ServiceConfig`.
pub type Routes = fn(&mut ServiceConfig);

/// The OpenAPI document of `routes`, on top of a service's `#[derive(OpenApi)]` base.
pub fn openapi_of(base: utoipa::openapi::OpenApi, routes: Routes) -> utoipa::openapi::OpenApi {
    App::new().into_utoipa_app().openapi(base).configure(routes).split_for_parts().1
}

/// What [`serve`] needs from a service.
pub struct Serve<D> {
    /// `host:port`; port 0 picks a free one (tests read it back).
    pub listen_addr: String,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    pub http_metrics: HttpMetrics,
    /// The `#[derive(OpenApi)]` base document (title, tags, security).
    pub api_doc: utoipa::openapi::OpenApi,
    pub routes: Routes,
    /// Registers the service's app data (`cfg.app_data(...)`).
    pub data: D,
}

/// Binds the listener and builds the server; returns the bound port and
/// the server, which runs once awaited (or spawned).
pub fn serve<D>(s: Serve<D>) -> anyhow::Result<(u16, actix_web::dev::Server)>
where
    D: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let doc = web::Data::new(Document(openapi_of(s.api_doc, s.routes)));
    let http_metrics = web::Data::new(s.http_metrics);
    let routes = s.routes;
    let data = s.data;
    let listener = TcpListener::bind(&s.listen_addr).with_context(|| format!("binding {}", s.listen_addr))?;
    let port = listener.local_addr()?.port();
    let mut server = HttpServer::new(move || {
        let data = data.clone();
        App::new()
            .configure(move |cfg| data(cfg))
            .app_data(doc.clone())
            .app_data(http_metrics.clone())
            .wrap(from_fn(record_http))
            // Outermost: the server span covers everything, metrics included.
            .wrap(RequestTracing::new())
            .into_utoipa_app()
            .configure(routes)
            .into_app()
            .configure(crate::openapi::docs_routes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::new(ErrorCode::NotFound, "no such route"))
            }))
    })
    .disable_signals()
    .shutdown_timeout(30)
    .listen(listener)?;
    if let Some(workers) = s.workers {
        server = server.workers(workers);
    }
    Ok((port, server.run()))
}
