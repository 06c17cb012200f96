//! What the private servers of the TLS tests share: a child process with
//! its log in a file, readiness read from that log, and (under root) the
//! unprivileged user a server insists on running as.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The user a child runs as: this process's own, or, when this process is
/// root, a system user (Postgres will not run as root).
pub(crate) struct RunAs {
    ids: Option<(u32, u32)>,
}

impl RunAs {
    pub(crate) fn unprivileged(user: &str) -> RunAs {
        // The owner of /proc/self is this process's effective user.
        let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        if !root {
            return RunAs { ids: None };
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, user]).output().expect("running id");
            assert!(out.status.success(), "running as root, the test needs a `{user}` user to run the server as");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        RunAs { ids: Some((id("-u"), id("-g"))) }
    }

    /// Hands `path` to the user.
    pub(crate) fn own(&self, path: &Path) {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// A server process, killed (and reaped) on drop.
pub(crate) struct ChildServer {
    name: String,
    log: PathBuf,
    child: Option<Child>,
}

impl ChildServer {
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> ChildServer {
        let out = File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        ChildServer { name: name.to_owned(), log: log.to_owned(), child: Some(child) }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log shows `line` `times` times; panics with the log
    /// if the process exits first or `timeout` passes (a bound, not a speed
    /// test).
    pub(crate) async fn wait_for_log(&mut self, line: &str, times: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.log_text().matches(line).count() >= times {
                return;
            }
            let exited = self.child.as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited || tokio::time::Instant::now() >= deadline {
                panic!(
                    "{} did not become ready ({}); its log:\n{}",
                    self.name,
                    if exited { "it exited" } else { "timed out" },
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (e.g. `-INT`), waits up to 10 s, then kills.
    pub(crate) fn stop(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
