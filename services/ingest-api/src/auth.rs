//! API keys and per-key rate limiting.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use service_common::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};

/// Who may call the API, and how often.
pub struct Auth {
    /// SHA-256 of each key → a short label for logs (never the key itself).
    keys: HashMap<[u8; 32], String>,
    insecure_no_auth: bool,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Auth {
    pub fn new(keys: &[String], insecure_no_auth: bool, per_second: u32, burst: u32) -> Auth {
        let keys = keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| {
                let digest: [u8; 32] = Sha256::digest(k.as_bytes()).into();
                (digest, format!("key-{}", &hex::encode(digest)[..8]))
            })
            .collect();
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Auth { keys, insecure_no_auth, limiter }
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    fn authenticate(&self, req: &HttpRequest) -> Result<Client, ApiError> {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let client = match presented {
            Some(token) => {
                // Comparing digests keeps the lookup's timing independent of
                // how much of a guessed key is right.
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                match self.keys.get(&digest) {
                    Some(label) => Client { label: label.clone() },
                    None if self.insecure_no_auth => Client { label: "anonymous".into() },
                    None => return Err(ApiError::new(ErrorCode::Unauthorized, "the API key is not valid")),
                }
            }
            None if self.insecure_no_auth => Client { label: "anonymous".into() },
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
