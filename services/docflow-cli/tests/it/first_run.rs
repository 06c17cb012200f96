//! A newcomer's `make run` on a machine without the servers' tools:
//! `scripts/ensure-services.sh` with a PATH that lacks pg_ctlcluster,
//! pg_isready, rabbitmq-server and rabbitmqctl, and URLs whose ports nothing
//! listens on, must say what to install or set, not fail on the first
//! missing command. Safe on the shared machine: with those tools hidden the
//! script cannot start (or stop) anything, and it only probes the two ports.

use std::path::{Path, PathBuf};

use test_support::process::free_port;
use test_support::unique_suffix;

const HIDDEN: [&str; 4] = ["pg_ctlcluster", "pg_isready", "rabbitmq-server", "rabbitmqctl"];

/// A directory of links to every command in /usr/bin and /bin but `HIDDEN`.
fn path_without_server_tools() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("docflow-path-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    for bin_dir in ["/usr/bin", "/bin"] {
        for entry in std::fs::read_dir(bin_dir).unwrap().flatten() {
            let name = entry.file_name();
            let link = dir.join(&name);
            if HIDDEN.iter().any(|h| name == *h) || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), link);
        }
    }
    dir
}

#[test]
fn ensure_services_names_what_is_missing_and_how_to_point_elsewhere() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-services.sh");
    let path = path_without_server_tools();
    let (pg_port, mq_port) = (free_port(), free_port());
    let out = std::process::Command::new("/bin/bash")
        .arg(&script)
        .env_clear()
        .env("PATH", &path)
        .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:{pg_port}/docflow"))
        .env("AMQP_URL", format!("amqp://guest:guest@localhost:{mq_port}/%2f"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains(": line "), "no command failed under bash: {err}");
    for expected in [
        format!(
            "PostgreSQL does not answer at 127.0.0.1:{pg_port} and cannot be started here: pg_ctlcluster: command not found"
        ),
        "sudo apt-get install postgresql".to_owned(),
        "export DATABASE_URL=postgres://".to_owned(),
        format!("RabbitMQ does not answer at localhost:{mq_port} and cannot be started here"),
        "sudo apt-get install rabbitmq-server".to_owned(),
        "export AMQP_URL=amqp://".to_owned(),
    ] {
        assert!(err.contains(&expected), "{expected:?} missing from:\n{err}");
    }

    // Servers elsewhere that do not answer are named as such, with no
    // advice to install anything locally (and no local start attempted).
    let out = std::process::Command::new("/bin/bash")
        .arg(&script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DATABASE_URL", "postgres://docflow:secret@db.invalid:5432/docflow?sslmode=require")
        .env("AMQP_URL", "amqps://guest:guest@mq.invalid:5671/%2f")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("PostgreSQL does not answer at db.invalid:5432 (DATABASE_URL)"), "{err}");
    assert!(err.contains("RabbitMQ does not answer at mq.invalid:5671 (AMQP_URL)"), "{err}");
    assert!(!err.contains("apt-get"), "{err}");
    assert!(!err.contains("secret"), "the password stays out of the message: {err}");
}
