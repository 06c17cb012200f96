//! Console sessions: an admin token, given once at the login form, is kept
//! in a *private* cookie (AES-256-GCM: encrypted and authenticated with the
//! `CONSOLE_SESSION_KEY`), `HttpOnly`, `SameSite=Strict`, `Secure` over TLS
//! or when `CONSOLE_SECURE_COOKIES` says so. Every request re-checks the
//! token against `ADMIN_TOKENS`, so removing a token ends its sessions and
//! the role shown is always the token's current one.
//!
//! CSRF: a synchronizer token, drawn at random per session and kept inside
//! the encrypted cookie, is written into every form and compared (in
//! constant time) on every POST. The login form has one too, from a
//! pre-session cookie, and logging in draws a fresh one (no fixation).
//!
//! Logging out revokes the session server-side (`console_revoked_sessions`,
//! by the SHA-256 of its random id, until it would have expired), so a copy
//! of the cookie taken before is refused by every replica. Login attempts
//! are limited per client address (`CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite, time};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use futures::future::LocalBoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota};
use rand::Rng;
use serde::{Deserialize, Serialize};
use service_common::admin_auth::{AdminAuth, Role};
use service_common::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::console::error::ConsoleError;
use crate::state::AppState;

pub const COOKIE: &str = "docflow_console";

/// What the console needs to issue and read sessions.
pub struct SessionKeys {
    key: Key,
    secure_always: bool,
    lifetime: time::Duration,
}

impl SessionKeys {
    /// `configured`: base64 of at least 32 bytes; `None` draws a random key.
    pub fn new(configured: Option<&str>, secure_always: bool, hours: u32) -> anyhow::Result<SessionKeys> {
        let key = match configured {
            Some(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| anyhow::anyhow!("CONSOLE_SESSION_KEY is not base64: {e}"))?;
                anyhow::ensure!(bytes.len() >= 32, "CONSOLE_SESSION_KEY must hold at least 32 bytes");
                Key::derive_from(&bytes)
            }
            None => Key::generate(),
        };
        Ok(SessionKeys { key, secure_always, lifetime: time::Duration::hours(i64::from(hours)) })
    }
}

/// The cookie's content (encrypted).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    /// The admin token; absent in the pre-session cookie of the login form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    /// The CSRF token.
    c: String,
    /// Issued at, Unix seconds.
    i: i64,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn read(req: &HttpRequest, keys: &SessionKeys) -> Option<Stored> {
    let raw = req.cookie(COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw.into_owned());
    let plain = jar.private(&keys.key).get(COOKIE)?;
    let stored: Stored = serde_json::from_str(plain.value()).ok()?;
    let age = now_secs() - stored.i;
    (0..=keys.lifetime.whole_seconds()).contains(&age).then_some(stored)
}

fn is_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

fn seal(req: &HttpRequest, keys: &SessionKeys, stored: &Stored) -> Cookie<'static> {
    let value = serde_json::to_string(stored).expect("a session serialises");
    let cookie = Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(keys.secure_always || is_tls(req))
        .max_age(keys.lifetime)
        .finish();
    let mut jar = CookieJar::new();
    jar.private_mut(&keys.key).add(cookie);
    jar.get(COOKIE).expect("just added").clone()
}

/// A cookie that removes the session.
pub fn cleared(req: &HttpRequest, keys: &SessionKeys) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(keys.secure_always || is_tls(req))
        .finish();
    cookie.make_removal();
    cookie
}

/// The login form's CSRF token: the pre-session cookie's, or a new one
/// (with the cookie to set).
pub fn login_csrf(req: &HttpRequest, keys: &SessionKeys) -> (String, Option<Cookie<'static>>) {
    match read(req, keys) {
        Some(stored) => (stored.c, None),
        None => {
            let stored = Stored { t: None, c: random_token(), i: now_secs() };
            let cookie = seal(req, keys, &stored);
            (stored.c, Some(cookie))
        }
    }
}

/// Checks the login form's CSRF token and the token given; the new
/// session's cookie on success.
pub fn log_in(
    req: &HttpRequest,
    keys: &SessionKeys,
    auth: &AdminAuth,
    csrf: Option<&str>,
    token: &str,
) -> Result<Cookie<'static>, ConsoleError> {
    let pre = read(req, keys);
    check_csrf(pre.as_ref().map(|s| s.c.as_str()), csrf)?;
    let token = token.trim();
    if token.is_empty() || auth.authenticate(token).is_none() {
        return Err(ConsoleError::LoginFailed);
    }
    Ok(seal(req, keys, &Stored { t: Some(token.to_owned()), c: random_token(), i: now_secs() }))
}

fn check_csrf(expected: Option<&str>, given: Option<&str>) -> Result<(), ApiError> {
    let refuse = |m: &'static str| Err(ApiError::new(ErrorCode::InvalidCsrfToken, m));
    match (expected, given.map(str::trim).filter(|g| !g.is_empty())) {
        (_, None) => refuse("the form carries no CSRF token: reload the page and submit it again"),
        (None, Some(_)) => refuse("no console session: log in again"),
        (Some(e), Some(g)) if bool::from(e.as_bytes().ct_eq(g.as_bytes())) => Ok(()),
        _ => refuse("the form's CSRF token is not this session's: reload the page and submit it again"),
    }
}

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// The token's audit name (never the token).
    pub actor: String,
    pub role: Role,
    /// Goes into every form. Also the session's id: random, per session.
    pub csrf: String,
    /// When the session began (Unix seconds), for its expiry.
    issued_at: i64,
}

impl ConsoleUser {
    pub fn can_write(&self) -> bool {
        self.role == Role::Write
    }

    /// For every POST: the session's CSRF token, then the write role.
    pub fn authorize_change(&self, csrf: Option<&str>) -> Result<(), ConsoleError> {
        check_csrf(Some(&self.csrf), csrf)?;
        if !self.can_write() {
            return Err(ApiError::new(ErrorCode::Forbidden, "this token may only read").into());
        }
        Ok(())
    }

    /// For POSTs any logged-in user may make (logout).
    pub fn check_csrf(&self, csrf: Option<&str>) -> Result<(), ConsoleError> {
        Ok(check_csrf(Some(&self.csrf), csrf)?)
    }

    /// What the revocation table keys this session by (never the id itself).
    fn session_hash(&self) -> String {
        session_hash(&self.csrf)
    }

    /// Ends this session on every replica, until it would have expired.
    pub async fn revoke(&self, pool: &sqlx::PgPool, keys: &SessionKeys) -> Result<(), ConsoleError> {
        let expires = chrono::DateTime::from_timestamp(self.issued_at + keys.lifetime.whole_seconds(), 0)
            .unwrap_or_else(chrono::Utc::now);
        job_store::console_sessions::revoke(pool, &self.session_hash(), expires).await.map_err(ApiError::store)?;
        Ok(())
    }
}

fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Addresses the login limiter keeps before it drops those at full allowance.
const KEPT_ADDRESSES: usize = 10_000;

/// Login attempts allowed per client address (the TCP peer: a forwarded
/// header could be forged to dodge the limit) and minute.
pub struct LoginLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl LoginLimiter {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter {
            limiter: NonZeroU32::new(per_minute).map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// Takes one attempt for the request's address; how long to wait when
    /// none is left.
    pub fn check(&self, req: &HttpRequest) -> Result<(), std::time::Duration> {
        let (Some(limiter), Some(peer)) = (&self.limiter, req.peer_addr()) else { return Ok(()) };
        // One entry per address ever seen: forget the ones whose allowance
        // is full again, so many addresses cannot grow the map without end.
        if limiter.len() > KEPT_ADDRESSES {
            limiter.retain_recent();
        }
        limiter.check_key(&peer.ip()).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()))
        })
    }
}

fn user_of(req: &HttpRequest) -> Result<ConsoleUser, ConsoleError> {
    let keys = req
        .app_data::<web::Data<SessionKeys>>()
        .ok_or_else(|| ApiError::internal("SessionKeys is not configured on the app"))?;
    let auth = req
        .app_data::<web::Data<Arc<AdminAuth>>>()
        .ok_or_else(|| ApiError::internal("AdminAuth is not configured on the app"))?;
    let login = || ConsoleError::LoginRequired { next: next_of(req) };
    let stored = read(req, keys).ok_or_else(login)?;
    let token = stored.t.as_deref().ok_or_else(login)?;
    let (role, actor) = auth.authenticate(token).ok_or_else(login)?;
    Ok(ConsoleUser { actor, role, csrf: stored.c, issued_at: stored.i })
}

/// Where to come back to after logging in: this page, for a GET.
fn next_of(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        req.uri().path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned())
    } else {
        "/".to_owned()
    }
}

/// Only a path on this site: no scheme, no `//host`, no backslash tricks.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.contains("://") => {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

impl FromRequest for ConsoleUser {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<ConsoleUser, ConsoleError>>;

    /// The cookie's session, unless it was logged out of (one indexed
    /// lookup per page, beside the page's own queries).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = user_of(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let next = next_of(req);
        Box::pin(async move {
            let user = user?;
            let state = state.ok_or_else(|| ApiError::internal("AppState is not configured on the app"))?;
            if job_store::console_sessions::is_revoked(&state.pool, &user.session_hash())
                .await
                .map_err(ApiError::store)?
            {
                return Err(ConsoleError::LoginRequired { next });
            }
            Ok(user)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_must_be_present_and_equal() {
        assert!(check_csrf(Some("abc"), Some("abc")).is_ok());
        assert_eq!(check_csrf(Some("abc"), None).unwrap_err().code, ErrorCode::InvalidCsrfToken);
        assert_eq!(check_csrf(Some("abc"), Some("  ")).unwrap_err().code, ErrorCode::InvalidCsrfToken);
        assert_eq!(check_csrf(Some("abc"), Some("abd")).unwrap_err().code, ErrorCode::InvalidCsrfToken);
        assert_eq!(check_csrf(None, Some("abc")).unwrap_err().code, ErrorCode::InvalidCsrfToken);
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/jobs?q=a")), "/jobs?q=a");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(SessionKeys::new(Some("c2hvcnQ="), false, 1).is_err());
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(SessionKeys::new(Some(&key), false, 1).is_ok());
    }
}
