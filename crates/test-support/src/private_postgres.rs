//! A Postgres of the test's own: `initdb` into a temporary directory, its
//! own port and unix-socket directory. Two kinds: for TLS tests, `ssl=on`
//! with a server certificate from a [`TestCa`](crate::TestCa) and a
//! `pg_hba.conf` that accepts TCP connections over TLS only; for crash
//! tests, plain TCP, and a WAL writer the test can stop and kill (a crash
//! the postmaster recovers from, losing what was only in shared memory).
//! The shared Postgres on 5432 is never touched. Stopped and deleted when
//! the guard drops.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::pki::ServerCert;
use crate::private_server::{ChildServer, RunAs};

/// The line Postgres logs each time it is ready: at start and after each
/// crash recovery.
const READY: &str = "database system is ready to accept connections";

pub struct PrivatePostgres {
    pub port: u16,
    server: ChildServer,
    /// The WAL writer while stopped: resumed before shutdown, which would
    /// otherwise wait for it.
    stopped_wal_writer: Option<u32>,
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
        PrivatePostgres::launch(Some(cert), &[]).await
    }

    /// Starts a server over plain TCP with `settings` (postgresql.conf
    /// lines) added: for tests of what a database crash does.
    pub async fn start_plain(settings: &[&str]) -> PrivatePostgres {
        PrivatePostgres::launch(None, settings).await
    }

    async fn launch(cert: Option<&ServerCert>, settings: &[&str]) -> PrivatePostgres {
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

        let port = crate::process::free_port();
        let mut conf = String::new();
        writeln!(conf, "listen_addresses = '127.0.0.1'").unwrap();
        writeln!(conf, "port = {port}").unwrap();
        writeln!(conf, "unix_socket_directories = '{}'", dir.path().display()).unwrap();
        // A throwaway cluster: small, and no fsync (a crash of the server's
        // processes keeps what they wrote; only shared memory is lost).
        writeln!(conf, "fsync = off\nmax_connections = 30\nshared_buffers = 16MB").unwrap();
        let hba = match cert {
            Some(cert) => {
                let (cert_file, key_file, _) = cert.write(&data, "server");
                run_as.own(&cert_file);
                run_as.own(&key_file);
                writeln!(conf, "ssl = on").unwrap();
                writeln!(conf, "ssl_cert_file = 'server.crt'").unwrap();
                writeln!(conf, "ssl_key_file = 'server.key'").unwrap();
                // TCP only over TLS, so a test that connected at all proves TLS.
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n"
            }
            None => "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        };
        for setting in settings {
            writeln!(conf, "{setting}").unwrap();
        }
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();

        let mut command = run_as.command(&bin.join("postgres"));
        command.arg("-D").arg(&data);
        let mut server = ChildServer::spawn("postgres", command, &dir.path().join("postgres.log"));
        server.wait_for_log(READY, 1, Duration::from_secs(120)).await;
        PrivatePostgres { port, server, stopped_wal_writer: None, _dir: dir }
    }

    /// The admin URL (the `postgres` database over plain TCP), for
    /// [`TestDb::new_on`](crate::TestDb::new_on).
    pub fn admin_url(&self) -> String {
        self.url("127.0.0.1", "sslmode=disable")
    }

    /// Stops the WAL writer (SIGSTOP), the process that writes out
    /// asynchronously committed transactions: from now on their WAL stays
    /// in shared memory until a synchronous commit flushes it, and a crash
    /// loses it. For a test to be sure of that, the cluster should also run
    /// without autovacuum and the background writer's LRU writes
    /// (`autovacuum = off`, `bgwriter_lru_maxpages = 0`), the other
    /// processes that could flush WAL on their own.
    ///
    /// While it is stopped, whatever waits for every server process waits
    /// for it too (`DROP DATABASE`, as a [`TestDb`](crate::TestDb) does when
    /// dropped): [`resume_wal_writer`](Self::resume_wal_writer) or
    /// [`crash`](Self::crash) before that.
    pub async fn stop_wal_writer(&mut self) {
        let pid = self.wal_writer().await;
        signal("-STOP", pid);
        self.stopped_wal_writer = Some(pid);
    }

    /// Lets a stopped WAL writer run again.
    pub fn resume_wal_writer(&mut self) {
        if let Some(pid) = self.stopped_wal_writer.take() {
            // Not checked: this also runs on drop, where a panic would hide
            // the test's own, and a writer already gone needs no resuming.
            let _ = send_signal("-CONT", pid);
        }
    }

    /// Kills the WAL writer (SIGKILL): a server process dying by a signal
    /// is a crash to the postmaster, which ends every session and restarts
    /// the cluster from its WAL on disk (crash recovery). Returns once the
    /// server accepts connections again.
    pub async fn crash(&mut self) {
        let restarts = self.log_text().matches(READY).count();
        signal("-KILL", self.wal_writer().await);
        self.stopped_wal_writer = None;
        self.server.wait_for_log(READY, restarts + 1, Duration::from_secs(120)).await;
    }

    async fn wal_writer(&self) -> u32 {
        use sqlx::Connection as _;
        let mut connection = sqlx::PgConnection::connect(&self.admin_url()).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        let _ = connection.close().await;
        pid as u32
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

fn signal(signal: &str, pid: u32) {
    assert!(send_signal(signal, pid), "kill {signal} {pid}");
}

fn send_signal(signal: &str, pid: u32) -> bool {
    Command::new("kill").args([signal, &pid.to_string()]).status().is_ok_and(|s| s.success())
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Shutdown waits for every process, the WAL writer too.
        self.resume_wal_writer();
        // SIGINT is Postgres's fast shutdown: backends end, nothing lingers.
        self.server.stop("-INT");
    }
}
