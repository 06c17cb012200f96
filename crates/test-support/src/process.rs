//! Service binaries as processes, for end-to-end tests: spawned with a
//! clean environment on a free port, logs to a file, killed on drop.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A binary built next to `own` (a test's `env!("CARGO_BIN_EXE_…")`) by
/// the same cargo run; panics with a hint when it is missing.
pub fn sibling_binary(own: &str, name: &str) -> PathBuf {
    let path = Path::new(own).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace (`cargo nextest run --workspace`, or `cargo build -p {name}`)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running service binary.
pub struct ServiceProcess {
    pub name: String,
    pub port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `bin` with only `env` (plus LISTEN_ADDR on a free port and
    /// JSON logs), its output going to `log_dir/<name>.log`.
    pub fn spawn<K: AsRef<str>, V: AsRef<str>>(
        name: &str,
        bin: &Path,
        env: &HashMap<K, V>,
        log_dir: &Path,
    ) -> ServiceProcess {
        let port = free_port();
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(bin)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn,lapin=warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        ServiceProcess { name: name.to_owned(), port, log, child: Some(child) }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `/readyz` answers 2xx.
    pub async fn ready(&self, http: &reqwest::Client) {
        let url = self.url("/readyz");
        let what = format!("{} to be ready (log: {})", self.name, self.log.display());
        crate::eventually(Duration::from_secs(60), &what, || async {
            http.get(&url).send().await.ok()?.status().is_success().then_some(())
        })
        .await;
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.exited(timeout).await
    }

    /// Waits for the process to exit by itself; kills it and panics past
    /// `timeout`.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not exit within {timeout:?}; log: {}", self.name, self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
