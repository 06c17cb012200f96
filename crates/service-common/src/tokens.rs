//! Bearer secrets (ingest API keys, admin tokens) and their comparison.
//!
//! A presented token is hashed and compared with every configured digest
//! in constant time, without stopping at a match, so how long a check takes
//! says nothing about which token matched or how much of a guess was right.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Configured secrets, each with what it grants.
#[derive(Debug, Clone)]
pub struct TokenSet<V> {
    entries: Vec<([u8; 32], V)>,
}

impl<V> Default for TokenSet<V> {
    fn default() -> Self {
        TokenSet { entries: Vec::new() }
    }
}

impl<V> TokenSet<V> {
    /// Adds `token`; a token given twice keeps its first grant.
    pub fn insert(&mut self, token: &str, grant: V) {
        if self.get(token).is_none() {
            self.entries.push((digest(token), grant));
        }
    }

    /// What `token` grants, if it is one of the set.
    pub fn get(&self, token: &str) -> Option<&V> {
        let presented = digest(token);
        let mut found = None;
        for (known, grant) in &self.entries {
            if bool::from(known.ct_eq(&presented)) {
                found = Some(grant);
            }
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer TOKEN` header, if there is one.
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_configured_tokens() {
        let mut set = TokenSet::default();
        set.insert("alpha-secret", 1);
        set.insert("beta-secret", 2);
        set.insert("alpha-secret", 3);
        assert_eq!(set.get("alpha-secret"), Some(&1));
        assert_eq!(set.get("beta-secret"), Some(&2));
        assert_eq!(set.get("alpha-secre"), None);
        assert_eq!(set.get(""), None);
        assert_eq!(set.len(), 2);
    }
}
