//! HTTP calls to ingest-api and dlq-admin, and what their errors mean.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// The API said no: its status, code and message.
#[derive(Debug)]
pub struct ApiFailure {
    pub service: &'static str,
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub body: Value,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {} {}: {}", self.service, self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiFailure {}

/// One service: its base URL and token.
pub struct Service {
    pub name: &'static str,
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// The HTTP client every command uses. `https://` URLs are checked against
/// the platform's trust store plus the certificates in `ca_file`.
pub fn http_client(timeout: Duration, ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("--ca-file: cannot read {}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--ca-file: {} is not a PEM certificate bundle", path.display()))?;
        anyhow::ensure!(!certificates.is_empty(), "--ca-file: {} holds no PEM certificate", path.display());
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().context("building the HTTP client")
}

impl Service {
    pub fn new(name: &'static str, base: &str, token: Option<String>, http: reqwest::Client) -> Service {
        Service { name, base: base.trim_end_matches('/').to_owned(), token, http }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends and returns the JSON body of a 2xx answer; anything else is
    /// an [`ApiFailure`] (or a transport error naming the URL).
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| format!("cannot reach {} at {}", self.name, self.base))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading {}'s answer", self.name))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"]["code"].as_str().unwrap_or("http_error").to_owned();
        let message = body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| body.to_string());
        Err(ApiFailure { service: self.name, status, code, message, body }.into())
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(self.request(Method::GET, path).query(query)).await
    }

    pub async fn json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(method, path).json(body)).await
    }
}
