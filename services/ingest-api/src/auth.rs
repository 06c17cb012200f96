//! API keys and per-key rate limiting.

use std::future::{Ready, ready};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use service_common::tokens::TokenSet;
use service_common::{ApiError, ErrorCode};

/// Who may call the API, and how often.
pub struct Auth {
    /// Each key → a short label for logs and rate limits (never the key itself).
    keys: TokenSet<String>,
    insecure_no_auth: bool,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Auth {
    pub fn new(keys: &[String], insecure_no_auth: bool, per_second: u32, burst: u32) -> Auth {
        let mut set = TokenSet::default();
        for (i, key) in keys.iter().filter(|k| !k.is_empty()).enumerate() {
            set.insert(key, format!("key-{}", i + 1));
        }
        if !set.is_empty() && insecure_no_auth {
            tracing::warn!("API keys are configured, so --insecure-no-auth has no effect: every call needs a key");
        }
        let insecure_no_auth = insecure_no_auth && set.is_empty();
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Auth { keys: set, insecure_no_auth, limiter }
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    fn authenticate(&self, req: &HttpRequest) -> Result<Client, ApiError> {
        // Only a service without keys, started with --insecure-no-auth, is open.
        let client = match service_common::tokens::bearer(req) {
            _ if self.insecure_no_auth => Client { label: "anonymous".into() },
            Some(token) => match self.keys.get(token) {
                Some(label) => Client { label: label.clone() },
                None => return Err(ApiError::new(ErrorCode::Unauthorized, "the API key is not valid")),
            },
            None => {
                return Err(ApiError::new(ErrorCode::Unauthorized, "send an API key as 'Authorization: Bearer KEY'"));
            }
        };
        if let Some(limiter) = &self.limiter
            && let Err(not_until) = limiter.check_key(&client.label)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::new(ErrorCode::RateLimited, "too many requests for this API key")
                .retry_after(wait.max(Duration::from_secs(1))));
        }
        Ok(client)
    }
}

/// An authenticated caller; taking it as a handler argument is what makes a
/// route require a key.
#[derive(Debug, Clone)]
pub struct Client {
    pub label: String,
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Client, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(auth) = req.app_data::<web::Data<Arc<Auth>>>() else {
            return ready(Err(ApiError::internal("Auth is not configured on the app")));
        };
        ready(auth.authenticate(req))
    }
}
