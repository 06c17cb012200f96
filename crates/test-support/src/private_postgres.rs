//! A Postgres of the test's own, for TLS tests: `initdb` into a temporary
//! directory, its own port and unix-socket directory, `ssl=on` with a
//! server certificate from a [`TestCa`](crate::TestCa), and a `pg_hba.conf`
//! that accepts TCP connections over TLS only. The shared Postgres on 5432
//! is never touched. Stopped and deleted when the guard drops.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pki::ServerCert;
use crate::private_server::{ChildServer, RunAs};

pub struct PrivatePostgres {
    pub port: u16,
    server: ChildServer,
    _dir: tempfile::TempDir,
}

/// Where `initdb` and `postgres` are: `TEST_POSTGRES_BIN_DIR`, else the
/// newest `/usr/lib/postgresql/<major>/bin` (Debian's layout, what
/// scripts/ensure-services.sh starts the shared server from).
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TEST_POSTGRES_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "TLS tests start their own Postgres and need initdb (/usr/lib/postgresql/<major>/bin, or set TEST_POSTGRES_BIN_DIR)"
        ),
    }
}

impl PrivatePostgres {
    /// Starts a server presenting `cert`. Only `postgres` exists, with
    /// `trust` authentication: what is under test is the transport.
    pub async fn start(cert: &ServerCert) -> PrivatePostgres {
        let bin = bin_dir();
        // Postgres refuses to run as root; under root (CI containers) the
        // cluster belongs to the `postgres` system user instead.
        let run_as = RunAs::unprivileged("postgres");
        let dir = tempfile::Builder::new().prefix("docflow-pg-").tempdir().unwrap();
        run_as.own(dir.path());
        let data = dir.path().join("data");
        let output = run_as
            .command(&bin.join("initdb"))
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("running initdb");
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));

        let (cert_file, key_file, _) = cert.write(&data, "server");
        run_as.own(&cert_file);
        run_as.own(&key_file);
        let port = crate::process::free_port();
        let mut conf = String::new();
        writeln!(conf, "listen_addresses = '127.0.0.1'").unwrap();
        writeln!(conf, "port = {port}").unwrap();
        writeln!(conf, "unix_socket_directories = '{}'", dir.path().display()).unwrap();
        writeln!(conf, "ssl = on").unwrap();
        writeln!(conf, "ssl_cert_file = 'server.crt'").unwrap();
        writeln!(conf, "ssl_key_file = 'server.key'").unwrap();
        // A throwaway cluster: small, and no fsync.
        writeln!(conf, "fsync = off\nmax_connections = 30\nshared_buffers = 16MB").unwrap();
        append(&data.join("postgresql.conf"), &conf);
        // TCP only over TLS, so a test that connected at all proves TLS.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();

        let mut command = run_as.command(&bin.join("postgres"));
        command.arg("-D").arg(&data);
        let mut server = ChildServer::spawn("postgres", command, &dir.path().join("postgres.log"));
        server.wait_for_log("database system is ready to accept connections", Duration::from_secs(120)).await;
        PrivatePostgres { port, server, _dir: dir }
    }

    /// A URL to the `postgres` database through `host` (e.g. `localhost`,
    /// or `127.0.0.1` to miss the certificate's name), with `query` (e.g.
    /// `sslmode=verify-full`) appended.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }

    pub fn log_text(&self) -> String {
        self.server.log_text()
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // SIGINT is Postgres's fast shutdown: backends end, nothing lingers.
        self.server.stop("-INT");
    }
}
