//! `GET /login`, `POST /login`, `POST /logout`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;
use service_common::admin_auth::AdminAuth;

use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::{self, ConsoleUser, LoginLimiter, SessionKeys};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Why the form is shown again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    None,
    UnknownToken,
    TooManyAttempts,
}

fn form(csrf: &str, next: &str, refusal: Refusal) -> maud::Markup {
    layout::bare(
        "Log in · docflow console",
        html! {
            h1 { "docflow console" }
            @match refusal {
                Refusal::None => {},
                Refusal::UnknownToken => p.error-text role="alert" data-error-code="unauthorized" { "That token is not an admin token." },
                Refusal::TooManyAttempts => p.error-text role="alert" data-error-code="rate_limited" { "Too many login attempts from this address: wait a minute and try again." },
            }
            form.panel method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "Admin token" } br;
                    input #token type="password" name="token" required autocomplete="current-password" autofocus size="40";
                }
                p.muted { "A token from ADMIN_TOKENS: a read token sees everything, a write token may also retry, delete and resolve." }
                button.primary type="submit" { "Log in" }
            }
        },
    )
}

pub async fn login_form(req: HttpRequest, q: web::Query<LoginQuery>, keys: web::Data<SessionKeys>) -> HttpResponse {
    let (csrf, cookie) = session::login_csrf(&req, &keys);
    let next = session::safe_next(q.next.as_deref());
    let mut response = HttpResponse::Ok();
    if let Some(c) = cookie {
        response.cookie(c);
    }
    crate::console::page_headers(&mut response).body(form(&csrf, &next, Refusal::None).into_string())
}

/// The login form again, with why, and a fresh pre-session cookie if needed.
fn refused(
    req: &HttpRequest,
    keys: &SessionKeys,
    next: &str,
    refusal: Refusal,
    mut response: actix_web::HttpResponseBuilder,
) -> HttpResponse {
    let (csrf, cookie) = session::login_csrf(req, keys);
    if let Some(c) = cookie {
        response.cookie(c);
    }
    crate::console::page_headers(&mut response).body(form(&csrf, next, refusal).into_string())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    token: Option<String>,
    next: Option<String>,
}

pub async fn log_in(
    req: HttpRequest,
    f: web::Form<LoginForm>,
    keys: web::Data<SessionKeys>,
    auth: web::Data<Arc<AdminAuth>>,
    limiter: web::Data<LoginLimiter>,
) -> Result<HttpResponse, ConsoleError> {
    let next = session::safe_next(f.next.as_deref());
    // Counted before the token is looked at: guessing is what it limits.
    if let Err(wait) = limiter.check(&req) {
        tracing::warn!(peer = ?req.peer_addr(), "console login attempts over the limit");
        let mut response = HttpResponse::TooManyRequests();
        response.insert_header(("Retry-After", wait.as_secs().max(1).to_string()));
        return Ok(refused(&req, &keys, &next, Refusal::TooManyAttempts, response));
    }
    match session::log_in(&req, &keys, &auth, f.csrf.as_deref(), f.token.as_deref().unwrap_or("")) {
        Ok(cookie) => Ok(HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", next)).finish()),
        Err(ConsoleError::LoginFailed) => {
            tracing::warn!("console login with an unknown token");
            Ok(refused(&req, &keys, &next, Refusal::UnknownToken, HttpResponse::Unauthorized()))
        }
        Err(other) => Err(other),
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

pub async fn log_out(
    req: HttpRequest,
    user: ConsoleUser,
    f: web::Form<LogoutForm>,
    keys: web::Data<SessionKeys>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.check_csrf(f.csrf.as_deref())?;
    user.revoke(&state.pool, &keys).await?;
    Ok(HttpResponse::SeeOther().cookie(session::cleared(&req, &keys)).insert_header(("Location", "/login")).finish())
}
