//! The one place a connection to the broker is opened.
//!
//! `amqps://` URLs connect over TLS (rustls, verifying the broker's
//! certificate and host name against the platform's trust store). A private
//! CA is named the way RabbitMQ's own clients name it, with the URI query
//! parameter `cacertfile` (<https://www.rabbitmq.com/docs/uri-query-parameters>):
//! `amqps://user:pass@host:5671/%2f?cacertfile=/etc/docflow/ca.pem`. Its
//! certificates are trusted in addition to the platform's. lapin ignores
//! query parameters it does not know, so the URL is passed on unchanged.

use std::path::PathBuf;

use lapin::tcp::OwnedTLSConfig;
use lapin::{Connect, Connection, ConnectionProperties};

/// Connects to `url`, named `name` in the broker's connection list (what an
/// operator sees in the management UI).
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    let tls = tls_config(url)?;
    url.connect_with_config(props, tls, lapin::runtime::default_runtime()?).await
}

/// The CA file a URL names, if any.
pub fn ca_file(url: &str) -> Option<PathBuf> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.query_pairs().find(|(k, _)| k == "cacertfile").map(|(_, v)| PathBuf::from(v.into_owned()))
}

/// Reads the CA file up front, so that a missing or unreadable file is an
/// error naming it rather than a failed handshake.
fn tls_config(url: &str) -> lapin::Result<OwnedTLSConfig> {
    let Some(path) = ca_file(url) else { return Ok(OwnedTLSConfig::default()) };
    let pem = std::fs::read_to_string(&path).map_err(|error| {
        std::io::Error::new(error.kind(), format!("reading the AMQP CA file {} (cacertfile): {error}", path.display()))
    })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the AMQP CA file {} (cacertfile) holds no PEM certificate", path.display()),
        )
        .into());
    }
    Ok(OwnedTLSConfig { identity: None, cert_chain: Some(pem) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_is_read_from_the_query() {
        assert_eq!(ca_file("amqps://u:p@h:5671/%2f?cacertfile=%2Fetc%2Fca.pem"), Some("/etc/ca.pem".into()));
        assert_eq!(ca_file("amqps://u:p@h:5671/%2f?heartbeat=10&cacertfile=/ca.pem"), Some("/ca.pem".into()));
        assert_eq!(ca_file("amqp://u:p@h:5672/%2f"), None);
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_named_in_the_error() {
        let error = connect("amqps://u:p@127.0.0.1:1/%2f?cacertfile=/nonexistent/ca.pem", "t").await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    }
}
