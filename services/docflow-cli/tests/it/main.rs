//! The `docflow` binary against a running dlq-admin and ingest-api (in
//! process), on a fresh database and queue namespace per test.

mod first_run;
mod platform;
mod tls;

use std::process::Output;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use test_support::{TestBroker, TestDb, eventually, unique_suffix};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WRITE_TOKEN: &str = "cli-write-token";
const READ_TOKEN: &str = "cli-read-token";
const API_KEY: &str = "cli-api-key";

struct World {
    db: TestDb,
    _broker: TestBroker,
    admin_url: String,
    shutdown: CancellationToken,
}

impl World {
    async fn start() -> World {
        let db = TestDb::new().await;
        let broker = TestBroker::new();
        let config = dlq_admin::Config::parse_from([
            "dlq-admin",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
            "--amqp-url",
            &broker.amqp_url,
            "--namespace",
            &broker.namespace,
            "--admin-tokens",
            &format!("{WRITE_TOKEN}:write,{READ_TOKEN}:read"),
            "--sweep-interval-seconds",
            "0",
            "--http-workers",
            "1",
        ]);
        let app = dlq_admin::Application::build(config).await.expect("dlq-admin builds");
        let admin_url = format!("http://127.0.0.1:{}", app.port());
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(shutdown.clone()));
        World { db, _broker: broker, admin_url, shutdown }
    }

    /// Jobs parked in the DLQ, as the worker leaves them.
    async fn dlq_jobs(&self, n: usize, stage: &str) -> Vec<Uuid> {
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "WITH j AS ( \
                 INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, attempt, \
                                   retry_count, max_retries, error_message, error_stage, request_hash, dlq_at) \
                 SELECT id, 'doc-' || id, 'invoice.pdf', 'in/invoice.pdf', 100, 5, 'DLQ', 4, 3, 3, \
                        'blob_store_unavailable (retryable): timed out', $2, '\\x00'::bytea, now() \
                 FROM unnest($1::uuid[]) AS id RETURNING job_id \
             ) \
             INSERT INTO job_events (job_id, from_status, to_status, actor, detail) \
             SELECT job_id, 'PROCESSING', 'DLQ', 'worker', '{\"error_kind\": \"blob_store_unavailable\", \"reason\": \"retries_exhausted\"}' FROM j",
        )
        .bind(&ids)
        .bind(stage)
        .execute(&self.db.pool)
        .await
        .unwrap();
        ids
    }

    async fn status_of(&self, id: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1").bind(id).fetch_one(&self.db.pool).await.unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs `docflow` with a clean environment plus `env`.
async fn docflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_docflow"));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("docflow runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn dlq_list_json_show_and_retry_against_a_running_dlq_admin() {
    let world = World::start().await;
    let jobs = world.dlq_jobs(3, "upload").await;
    let other = world.dlq_jobs(1, "analysis").await;
    let env = [("DOCFLOW_ADMIN_URL", world.admin_url.as_str()), ("DOCFLOW_ADMIN_TOKEN", READ_TOKEN)];

    // list --json: the API's items, for scripts.
    let out = docflow(&["dlq", "list", "--json", "--stage", "upload"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let body: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let listed: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = jobs.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(listed, expected.iter().map(String::as_str).collect::<Vec<_>>());

    // --all follows every page.
    let out = docflow(&["dlq", "list", "--json", "--all", "--limit", "1"], &env).await;
    let body: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 4);
    assert!(body["next_cursor"].is_null());

    // The human table names the columns and the rows.
    let out = docflow(&["dlq", "list"], &env).await;
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().starts_with("ID  "), "{text}");
    assert!(text.contains(&other[0].to_string()) && text.contains("retries_exhausted"), "{text}");
    let out = docflow(&["dlq", "show", &jobs[0].to_string()], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("history:"), "{}", stdout(&out));
    let out = docflow(&["dlq", "groups", "--json"], &env).await;
    let groups: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(groups["total_groups"], 2);

    // A read token cannot retry: the auth status and the API's reason.
    let out = docflow(&["dlq", "retry", &jobs[0].to_string(), "--reason", "try"], &env).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("403 forbidden"), "{}", stderr(&out));

    // With the write token (as a flag): a single retry, then a group by filter.
    let write = ["--admin-token", WRITE_TOKEN];
    let out =
        docflow(&[&write[..], &["dlq", "retry", &jobs[0].to_string(), "--reason", "store fixed"]].concat(), &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("DLQ -> QUEUED"), "{}", stdout(&out));
    assert_eq!(world.status_of(jobs[0]).await, "QUEUED");

    let out =
        docflow(&[&write[..], &["dlq", "retry", &jobs[0].to_string(), "--reason", "again", "--json"]].concat(), &env)
            .await;
    assert_eq!(out.status.code(), Some(1), "a second retry is refused");
    let err: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(err["error"]["code"], "conflict");

    let out = docflow(
        &[&write[..], &["dlq", "retry", "--filter", "stage=upload", "--dry-run", "--reason", "check", "--json"]]
            .concat(),
        &env,
    )
    .await;
    let dry: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(dry["matched"], 2);
    let out =
        docflow(&[&write[..], &["dlq", "retry", "--filter", "stage=upload", "--reason", "store fixed"]].concat(), &env)
            .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("retried 2 job(s)"), "{}", stdout(&out));
    for id in &jobs {
        assert_eq!(world.status_of(*id).await, "QUEUED");
    }
    assert_eq!(world.status_of(other[0]).await, "DLQ");

    // Purge and audit.
    let out =
        docflow(&[&write[..], &["dlq", "purge", "--older-than-days", "0", "--reason", "clear"]].concat(), &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("deleted 1 job(s)"), "{}", stdout(&out));
    let out = docflow(&["dlq", "audit", "--json"], &env).await;
    let audit: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["purge", "bulk_retry", "retry"]);

    // A malformed id is the API's 400; no reason is clap's usage error.
    let out = docflow(&["dlq", "show", "not-an-id"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid_job_id"), "{}", stderr(&out));
    let out = docflow(&["dlq", "retry", &jobs[0].to_string()], &env).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn submit_uploads_a_file_and_status_reports_the_job() {
    let db = TestDb::new().await;
    let broker = TestBroker::new();
    let blob_dir = std::env::temp_dir().join(format!("docflow-cli-blobs-{}", unique_suffix()));
    let config = ingest_api::Config::parse_from([
        "ingest-api",
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
        "--amqp-url",
        &broker.amqp_url,
        "--namespace",
        &broker.namespace,
        "--blob-store-url",
        &format!("file://{}", blob_dir.display()),
        "--api-keys",
        API_KEY,
        "--http-workers",
        "1",
    ]);
    let app = ingest_api::Application::build(config).await.expect("ingest-api builds");
    let api_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let file_dir = std::env::temp_dir().join(format!("docflow-cli-files-{}", unique_suffix()));
    std::fs::create_dir_all(&file_dir).unwrap();
    let file = file_dir.join("invoice-77.txt");
    std::fs::write(&file, b"Invoice number: INV-77\nTotal: 10.00 EUR\n").unwrap();
    let env = [("DOCFLOW_API_URL", api_url.as_str()), ("DOCFLOW_API_KEY", API_KEY)];
    let file_arg = file.to_str().unwrap();
    let out = docflow(
        &["submit", file_arg, "--document-id", "inv-77", "--priority", "high", "--tag", "customer=acme", "--json"],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let accepted: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["priority"], "HIGH");

    let out = docflow(&["status", &job_id, "--json"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["document_id"], "inv-77");
    assert_eq!(status["filename"], "invoice-77.txt");
    assert_eq!(status["tags"]["customer"], "acme");
    assert_eq!(status["job_status"], "QUEUED");

    let out = docflow(&["status", &job_id], &env).await;
    assert!(stdout(&out).contains("status:") && stdout(&out).contains("QUEUED"), "{}", stdout(&out));

    // No worker runs here: the job has no result yet, and no tickets exist.
    let out = docflow(&["result", &job_id], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("job_not_completed"), "{}", stderr(&out));
    let out = docflow(&["tickets", "list", "--json"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(serde_json::from_str::<Value>(&stdout(&out)).unwrap()["tickets"], serde_json::json!([]));
    let out = docflow(&["tickets", "resolve", "424242", "--reason", "checked"], &env).await;
    assert_eq!(out.status.code(), Some(3), "not found");
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));

    // A wrong key: the auth status with the API's answer.
    let out = docflow(&["status", &job_id, "--api-key", "wrong"], &[("DOCFLOW_API_URL", api_url.as_str())]).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("401 unauthorized"), "{}", stderr(&out));

    // No worker: --wait gives up after its timeout with its own status (the
    // job goes on), and says how to follow it.
    let out =
        docflow(&["submit", file_arg, "--document-id", "inv-78", "--wait", "--wait-timeout-seconds", "1"], &env).await;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(stderr(&out).contains("QUEUED") && stderr(&out).contains("docflow status"), "{}", stderr(&out));
    // A malformed tag is a usage error, caught before any request.
    let out = docflow(&["submit", file_arg, "--tag", "no-equals-sign"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // No such job: not found.
    let out = docflow(&["status", &Uuid::now_v7().to_string()], &env).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // The submitted job reaches the queue (ingest's outbox relay).
    eventually(Duration::from_secs(30), "the job message on jobs.high", || async {
        (broker.ready_count(&broker.topology.job_queue(job_model::JobPriority::High)).await == 1).then_some(())
    })
    .await;
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&file_dir);
    let _ = std::fs::remove_dir_all(&blob_dir);
}

#[tokio::test]
async fn an_unreachable_service_is_the_unavailable_status() {
    let url = format!("http://127.0.0.1:{}", test_support::process::free_port());
    let out = docflow(&["jobs", "--api-url", &url, "--api-key", "k"], &[]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach ingest-api"), "{}", stderr(&out));
    let out = docflow(&["metrics", "report", "--metrics-url", &url], &[]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[tokio::test]
async fn help_documents_the_exit_statuses_and_completions_are_generated() {
    let out = docflow(&["--help"], &[]).await;
    assert!(out.status.success());
    let help = stdout(&out);
    for line in ["2  usage error", "3  not found", "4  authentication", "5  unavailable", "6  submit --wait"] {
        assert!(help.contains(line), "{line:?} missing from --help:\n{help}");
    }
    let out = docflow(&["completions", "bash"], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let bash = stdout(&out);
    assert!(bash.contains("_docflow()") && bash.contains("metrics") && bash.contains("--wait"), "{bash}");
    let out = docflow(&["completions", "zsh"], &[]).await;
    assert!(stdout(&out).starts_with("#compdef docflow"), "{}", stdout(&out));
    let out = docflow(&["completions", "fish"], &[]).await;
    assert!(stdout(&out).contains("complete -c docflow"), "{}", stdout(&out));
    let out = docflow(&["completions", "tcsh"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}
