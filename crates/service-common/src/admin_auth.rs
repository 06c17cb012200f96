//! Admin tokens (`ADMIN_TOKENS`, `name:token:role` entries, role `read` or `write`),
//! separate from ingest API keys. Taking [`Reader`] or [`Writer`] as a
//! handler argument is what protects a route.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::tokens::TokenSet;
use crate::{ApiError, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Write,
}

/// Who may call admin routes.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    /// Token → (role, name for the audit log).
    tokens: TokenSet<(Role, String)>,
    insecure_no_auth: bool,
}

impl AdminAuth {
    /// Parses `name:token:role` entries (role `read` or `write`; the name is
    /// what audit rows record as the actor, never the token). The older
    /// `token:role` form still works; its tokens are named `token-1`,
    /// `token-2`... in the order given. Refuses an empty set unless
    /// `insecure_no_auth`, so a service cannot start open by accident; with
    /// tokens configured, `insecure_no_auth` has no effect (a wrong or
    /// missing token is refused), so it can never grant more than a token.
    pub fn from_entries(entries: &[String], insecure_no_auth: bool) -> anyhow::Result<AdminAuth> {
        let mut tokens = TokenSet::default();
        let mut names = std::collections::HashSet::new();
        for (i, entry) in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).enumerate() {
            let (rest, role) = entry
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("ADMIN_TOKENS entries are name:token:role, got one without a role"))?;
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                other => anyhow::bail!("unknown admin role {other:?}: expected read or write"),
            };
            let (name, token) = match rest.split_once(':') {
                Some((name, token)) => (name.to_owned(), token),
                None => (format!("token-{}", i + 1), rest),
            };
            if token.is_empty() || name.is_empty() {
                anyhow::bail!("ADMIN_TOKENS has an empty name or token");
            }
            if !names.insert(name.clone()) {
                anyhow::bail!("ADMIN_TOKENS names {name:?} twice");
            }
            tokens.insert(token, (role, name));
        }
        if tokens.is_empty() && !insecure_no_auth {
            anyhow::bail!("no admin tokens configured: set ADMIN_TOKENS (name:token:role), or pass --insecure-no-auth");
        }
        if !tokens.is_empty() && insecure_no_auth {
            tracing::warn!(
                "admin tokens are configured, so --insecure-no-auth has no effect: every call needs a token"
            );
        }
        let open = insecure_no_auth && tokens.is_empty();
        Ok(AdminAuth { tokens, insecure_no_auth: open })
    }

    /// The role and audit name of a presented token (the console's login
    /// form takes one too); `None` for an unknown one. Only a service
    /// without tokens, started with `--insecure-no-auth`, lets anyone write.
    pub fn authenticate(&self, token: &str) -> Option<(Role, String)> {
        if self.insecure_no_auth {
            return Some((Role::Write, "anonymous".into()));
        }
        self.tokens.get(token).cloned()
    }

    fn role_of(&self, req: &HttpRequest) -> Result<(Role, String), ApiError> {
        if self.insecure_no_auth {
            return Ok((Role::Write, "anonymous".into()));
        }
        match crate::tokens::bearer(req) {
            Some(token) => self
                .authenticate(token)
                .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the admin token is not valid")),
            None => Err(ApiError::new(ErrorCode::Unauthorized, "send an admin token as 'Authorization: Bearer TOKEN'")),
        }
    }
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
        let auth = AdminAuth::from_entries(&["a:read".into(), "ops:b:c:write".into()], false).unwrap();
        assert_eq!(auth.authenticate("a"), Some((Role::Read, "token-1".into())));
        assert_eq!(auth.authenticate("b:c"), Some((Role::Write, "ops".into())), "the token may hold colons");
        assert_eq!(auth.authenticate("c"), None);
        assert!(AdminAuth::from_entries(&["a:admin".into()], false).is_err());
        assert!(AdminAuth::from_entries(&["a".into()], false).is_err());
        assert!(AdminAuth::from_entries(&["x:a:read".into(), "x:b:read".into()], false).is_err(), "names are unique");
        assert!(AdminAuth::from_entries(&[], false).is_err());
        assert!(AdminAuth::from_entries(&[], true).is_ok());
    }

    #[test]
    fn insecure_mode_never_grants_more_than_a_token() {
        let open = AdminAuth::from_entries(&[], true).unwrap();
        assert_eq!(open.authenticate("anything").map(|(r, _)| r), Some(Role::Write));
        let both = AdminAuth::from_entries(&["viewer:r-token:read".into()], true).unwrap();
        assert_eq!(both.authenticate("wrong"), None, "a wrong token is refused");
        assert_eq!(both.authenticate("r-token"), Some((Role::Read, "viewer".into())));
    }
}
