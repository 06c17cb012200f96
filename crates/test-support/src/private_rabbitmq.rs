//! A RabbitMQ node of the test's own with a TLS listener only: its own node
//! name, ports, data and log directories, config and (empty) plugin list,
//! `rabbitmq-server` in the foreground as a child. The shared broker on
//! 5672 is never touched; the node registers its name with the machine's
//! epmd (port 4369), as every Erlang node does, and its distribution port
//! is a free one (not 25672, the shared node's). Killed and deleted when the
//! guard drops.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::pki::ServerCert;
use crate::private_server::ChildServer;

pub struct PrivateRabbitMq {
    /// The AMQPS (TLS) port; there is no plain listener.
    pub port: u16,
    pub node_name: String,
    server: ChildServer,
    _dir: tempfile::TempDir,
}

/// The broker's own start script (Debian's /usr/sbin wrapper would switch
/// to the `rabbitmq` user and the shared node's directories);
/// `TEST_RABBITMQ_SERVER` overrides it.
fn server_script() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("TEST_RABBITMQ_SERVER").unwrap_or_else(|_| "/usr/lib/rabbitmq/bin/rabbitmq-server".into()),
    );
    assert!(
        path.exists(),
        "TLS tests start their own RabbitMQ node and need {} (set TEST_RABBITMQ_SERVER)",
        path.display()
    );
    path
}

impl PrivateRabbitMq {
    /// Starts a node presenting `cert` on a TLS listener on 127.0.0.1.
    /// The default `guest` user exists (loopback connections only).
    pub async fn start(cert: &ServerCert) -> PrivateRabbitMq {
        let script = server_script();
        let dir = tempfile::Builder::new().prefix("docflow-rabbit-").tempdir().unwrap();
        let root = dir.path();
        let (cert_file, key_file, ca_file) = cert.write(root, "server");
        let port = crate::process::free_port();
        let dist_port = crate::process::free_port();
        let node_port = crate::process::free_port();
        let config = root.join("rabbitmq.conf");
        std::fs::write(
            &config,
            format!(
                "listeners.tcp = none\n\
                 listeners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                ca_file.display(),
                cert_file.display(),
                key_file.display()
            ),
        )
        .unwrap();
        let plugins = root.join("enabled_plugins");
        std::fs::write(&plugins, "[].\n").unwrap();
        for sub in ["mnesia", "log", "home"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let node_name = format!("docflow-tls-{}@localhost", crate::unique_suffix());

        let mut command = Command::new(script);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()))
            .env("LANG", "C.UTF-8")
            // The Erlang cookie is made in $HOME.
            .env("HOME", root.join("home"))
            .env("RABBITMQ_NODENAME", &node_name)
            .env("RABBITMQ_NODE_PORT", node_port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", root.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", root.join("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_PID_FILE", root.join("rabbitmq.pid"))
            // Makes the script exec the Erlang VM instead of waiting on it
            // in a shell, so the child's pid is the node's and a kill stops it.
            .env("RUNNING_UNDER_SYSTEMD", "true");
        let mut server = ChildServer::spawn("rabbitmq", command, &root.join("rabbitmq.log"));
        server.wait_for_log("Server startup complete", Duration::from_secs(180)).await;
        PrivateRabbitMq { port, node_name, server, _dir: dir }
    }

    /// An `amqps://` URL as `guest` through `host` (`localhost` matches the
    /// test certificates), with `query` (e.g. `cacertfile=...`).
    pub fn url(&self, host: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "?" };
        format!("amqps://guest:guest@{host}:{}/%2f{sep}{query}", self.port)
    }

    pub fn log_text(&self) -> String {
        self.server.log_text()
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        // Its data is thrown away with the directory: no graceful stop needed.
        self.server.stop("-KILL");
    }
}
