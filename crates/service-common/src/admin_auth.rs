//! Admin tokens (`ADMIN_TOKENS`, `token:role` pairs, role `read` or `write`),
//! separate from ingest API keys. Taking [`Reader`] or [`Writer`] as a
//! handler argument is what protects a route.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::{ApiError, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Write,
}

/// Who may call admin routes.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    tokens: HashMap<String, Role>,
    insecure_no_auth: bool,
}

impl AdminAuth {
    /// Parses `token:role` entries. Refuses an empty set unless
    /// `insecure_no_auth`, so a service cannot start open by accident.
    pub fn from_entries(entries: &[String], insecure_no_auth: bool) -> anyhow::Result<AdminAuth> {
        let mut tokens = HashMap::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (token, role) = entry
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("ADMIN_TOKENS entries are token:role, got one without a role"))?;
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                other => anyhow::bail!("unknown admin role {other:?}: expected read or write"),
            };
            if token.is_empty() {
                anyhow::bail!("ADMIN_TOKENS has an empty token");
            }
            tokens.insert(token.to_owned(), role);
        }
        if tokens.is_empty() && !insecure_no_auth {
            anyhow::bail!("no admin tokens configured: set ADMIN_TOKENS (token:role), or pass --insecure-no-auth");
        }
        Ok(AdminAuth { tokens, insecure_no_auth })
    }

    /// The role and audit name of a presented token (the console's login
    /// form); `None` for an unknown one. With `--insecure-no-auth` every
    /// token writes, as on the API.
    pub fn authenticate(&self, token: &str) -> Option<(Role, String)> {
        match self.tokens.get(token) {
            Some(role) => Some((*role, actor_name(token))),
            None if self.insecure_no_auth => Some((Role::Write, "anonymous".into())),
            None => None,
        }
    }

    fn role_of(&self, req: &HttpRequest) -> Result<(Role, String), ApiError> {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        match presented {
            Some(token) => match self.tokens.get(token) {
                Some(role) => Ok((*role, actor_name(token))),
                None if self.insecure_no_auth => Ok((Role::Write, "anonymous".into())),
                None => Err(ApiError::new(ErrorCode::Unauthorized, "the admin token is not valid")),
            },
            None if self.insecure_no_auth => Ok((Role::Write, "anonymous".into())),
            None => Err(ApiError::new(ErrorCode::Unauthorized, "send an admin token as 'Authorization: Bearer TOKEN'")),
        }
    }
}

/// A short, stable name for a token in audit rows; never the token itself.
fn actor_name(token: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    format!("token-{:08x}", h.finish() as u32)
}

fn auth(req: &HttpRequest) -> Result<&Arc<AdminAuth>, ApiError> {
    req.app_data::<web::Data<Arc<AdminAuth>>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| ApiError::internal("AdminAuth is not configured on the app"))
}

/// A caller allowed to read.
#[derive(Debug, Clone)]
pub struct Reader {
    pub actor: String,
}

/// A caller allowed to change things.
#[derive(Debug, Clone)]
pub struct Writer {
    pub actor: String,
}

impl FromRequest for Reader {
    type Error = ApiError;
    type Future = Ready<Result<Reader, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth(req).and_then(|a| a.role_of(req)).map(|(_, actor)| Reader { actor }))
    }
}

impl FromRequest for Writer {
    type Error = ApiError;
    type Future = Ready<Result<Writer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth(req).and_then(|a| a.role_of(req)).and_then(|(role, actor)| match role {
            Role::Write => Ok(Writer { actor }),
            Role::Read => Err(ApiError::new(ErrorCode::Forbidden, "this token may only read")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_bad_ones_are_refused() {
        let auth = AdminAuth::from_entries(&["a:read".into(), "b:c:write".into()], false).unwrap();
        assert_eq!(auth.tokens.get("a"), Some(&Role::Read));
        assert_eq!(auth.tokens.get("b:c"), Some(&Role::Write));
        assert!(AdminAuth::from_entries(&["a:admin".into()], false).is_err());
        assert!(AdminAuth::from_entries(&["a".into()], false).is_err());
        assert!(AdminAuth::from_entries(&[], false).is_err());
        assert!(AdminAuth::from_entries(&[], true).is_ok());
    }
}
