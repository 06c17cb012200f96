//! The web console at `/`: server-rendered HTML over dlq-admin's own
//! operations ([`crate::ops`]: retries and deletes with their audit rows)
//! and job-store's reads. Logged in with an admin token at `/login`
//! ([`session`]); read tokens see every page and no write button, and a
//! POST with one is refused (403) like on the API.
//!
//! Pages: overview (`/`), jobs (`/jobs`, `/jobs/{id}`), dead letters
//! (`/dead-letters`), tickets (`/tickets`), audit log (`/audit`). Every
//! read page works without JavaScript; `static/console.js` adds confirm
//! dialogs and the overview's auto-refresh.

pub mod error;
mod forms;
pub mod layout;
mod pages;
pub mod session;
pub mod svg;

use actix_web::{HttpResponse, web};

pub use pages::overview::{Overview, OverviewSettings, load as load_overview, render as render_overview};
pub use session::SessionKeys;

/// Console settings the pages read.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Jaeger's UI, without a trailing slash.
    pub jaeger_ui_url: Option<String>,
    pub refresh_seconds: u32,
    pub overview: OverviewSettings,
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "max-age=3600"))
        .body(CSS)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "max-age=3600"))
        .body(JS)
}

/// Registers the console's routes (outside the OpenAPI document: they
/// are pages, not API).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(forms::form_config())
        .app_data(forms::query_config())
        .route("/console/static/console.css", web::get().to(css))
        .route("/console/static/console.js", web::get().to(js))
        .route("/login", web::get().to(pages::auth::login_form))
        .route("/login", web::post().to(pages::auth::log_in))
        .route("/logout", web::post().to(pages::auth::log_out))
        .route("/", web::get().to(pages::overview::overview))
        .route("/jobs", web::get().to(pages::jobs::search))
        .route("/jobs/{job_id}", web::get().to(pages::job::show))
        .route("/dead-letters", web::get().to(pages::dead_letters::list))
        .route("/dead-letters/bulk-retry", web::post().to(pages::dead_letters::bulk_retry))
        .route("/dead-letters/bulk-delete", web::post().to(pages::dead_letters::bulk_delete))
        .route("/dead-letters/retry-selected", web::post().to(pages::dead_letters::retry_selected))
        .route("/dead-letters/delete-selected", web::post().to(pages::dead_letters::delete_selected))
        .route("/dead-letters/runs/{id}", web::get().to(pages::dead_letters::run_progress))
        .route("/dead-letters/{id}/retry", web::post().to(pages::dead_letters::retry))
        .route("/dead-letters/{id}/delete", web::post().to(pages::dead_letters::delete))
        .route("/audit", web::get().to(pages::audit::list))
        .route("/tickets", web::get().to(pages::tickets::list))
        .route("/tickets/{id}/resolve", web::post().to(pages::tickets::resolve));
}

/// Headers every console page carries: only this origin's script and
/// styles (no inline script can run), never framed (the write buttons
/// cannot be clickjacked), not cached (pages hold job data), and no page
/// address in the Referer sent to Jaeger.
pub fn page_headers(response: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    response
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/html; charset=utf-8")
}

/// An HTML response.
fn html(markup: maud::Markup) -> HttpResponse {
    page_headers(&mut HttpResponse::Ok()).body(markup.into_string())
}

/// After a change: back to a page, with a notice (Post/Redirect/Get).
fn see_other(path: &str, notice: &str) -> HttpResponse {
    let sep = if path.contains('?') { '&' } else { '?' };
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{path}{sep}notice={}", error::urlencode(notice))))
        .finish()
}
