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
    /// The AMQP port: TLS only for [`PrivateRabbitMq::start`], plain for
    /// [`PrivateRabbitMq::start_plain`].
    pub port: u16,
    pub node_name: String,
    server: Option<ChildServer>,
    launches: u32,
    dist_port: u16,
    node_port: u16,
    dir: tempfile::TempDir,
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
        "tests that start their own RabbitMQ node need {} (set TEST_RABBITMQ_SERVER)",
        path.display()
    );
    path
}

impl PrivateRabbitMq {
    /// Starts a node presenting `cert` on a TLS listener on 127.0.0.1.
    /// The default `guest` user exists (loopback connections only).
    pub async fn start(cert: &ServerCert) -> PrivateRabbitMq {
        let dir = tempfile::Builder::new().prefix("docflow-rabbit-").tempdir().unwrap();
        let (cert_file, key_file, ca_file) = cert.write(dir.path(), "server");
        let port = crate::process::free_port();
        let listener = format!(
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
        );
        Self::start_with(dir, port, &listener, "tls").await
    }

    /// Starts a node with a plain AMQP listener on 127.0.0.1, for tests that
    /// restart a broker for real (stop it, start it again on the same port
    /// and data directory): the shared broker serves every other test.
    pub async fn start_plain() -> PrivateRabbitMq {
        let dir = tempfile::Builder::new().prefix("docflow-rabbit-").tempdir().unwrap();
        let port = crate::process::free_port();
        let listener = format!("listeners.tcp.default = 127.0.0.1:{port}\n");
        Self::start_with(dir, port, &listener, "plain").await
    }

    async fn start_with(dir: tempfile::TempDir, port: u16, listener: &str, kind: &str) -> PrivateRabbitMq {
        let root = dir.path();
        std::fs::write(root.join("rabbitmq.conf"), listener).unwrap();
        std::fs::write(root.join("enabled_plugins"), "[].\n").unwrap();
        for sub in ["mnesia", "log", "home"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let node_name = format!("docflow-{kind}-{}@localhost", crate::unique_suffix());
        let mut broker = PrivateRabbitMq {
            port,
            node_name,
            server: None,
            launches: 0,
            dist_port: crate::process::free_port(),
            node_port: crate::process::free_port(),
            dir,
        };
        broker.launch().await;
        broker
    }

    /// Runs the node (again) with the same name, ports and data.
    async fn launch(&mut self) {
        let script = server_script();
        let root = self.dir.path();
        self.launches += 1;
        let mut command = Command::new(script);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()))
            .env("LANG", "C.UTF-8")
            // The Erlang cookie is made in $HOME.
            .env("HOME", root.join("home"))
            .env("RABBITMQ_NODENAME", &self.node_name)
            .env("RABBITMQ_NODE_PORT", self.node_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", root.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", root.join("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_CONFIG_FILE", root.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", root.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", root.join("rabbitmq.pid"))
            // Makes the script exec the Erlang VM instead of waiting on it
            // in a shell, so the child's pid is the node's and a kill stops it.
            .env("RUNNING_UNDER_SYSTEMD", "true");
        // A log per run, so readiness is read from this run's lines.
        let log = root.join(format!("rabbitmq-{}.log", self.launches));
        let mut server = ChildServer::spawn("rabbitmq", command, &log);
        server.wait_for_log("Server startup complete", 1, Duration::from_secs(180)).await;
        self.server = Some(server);
    }

    /// Stops the node as an operator would (SIGTERM: a clean shutdown that
    /// closes every connection), waits `down_for`, and starts it again on
    /// the same port with the same data: durable queues and their messages
    /// are back.
    pub async fn restart(&mut self, down_for: Duration) {
        self.stop().await;
        tokio::time::sleep(down_for).await;
        self.start_again().await;
    }

    /// The first half of [`PrivateRabbitMq::restart`]: a clean shutdown.
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            tokio::task::spawn_blocking(move || server.stop("-TERM")).await.unwrap();
        }
    }

    /// The second half: the same node, port and data, running again.
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "stop it first");
        self.launch().await;
    }

    /// An `amqp://` URL as `guest` (a node from [`PrivateRabbitMq::start_plain`]).
    pub fn plain_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// An `amqps://` URL as `guest` through `host` (`localhost` matches the
    /// test certificates), with `query` (e.g. `cacertfile=...`).
    pub fn url(&self, host: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "?" };
        format!("amqps://guest:guest@{host}:{}/%2f{sep}{query}", self.port)
    }

    pub fn log_text(&self) -> String {
        self.server.as_ref().map(ChildServer::log_text).unwrap_or_default()
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        // Its data is thrown away with the directory: no graceful stop needed.
        if let Some(server) = &mut self.server {
            server.stop("-KILL");
        }
    }
}
