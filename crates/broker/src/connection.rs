//! The one place a connection to the broker is opened.

use lapin::{Connection, ConnectionProperties};

/// Connects to `url`, named `name` in the broker's connection list (what an
/// operator sees in the management UI).
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    Connection::connect(url, props).await
}
