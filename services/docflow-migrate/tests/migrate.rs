//! `docflow-migrate` against the local Postgres, and a service started with
//! SKIP_MIGRATIONS waiting for it.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::Duration;

use test_support::TestDb;
use test_support::process::{ServiceProcess, sibling_binary};

const MIGRATE: &str = env!("CARGO_BIN_EXE_docflow-migrate");

fn migrate(database_url: &str, args: &[&str]) -> Output {
    Command::new(MIGRATE)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("MIGRATE_CONNECT_WAIT_SECONDS", "2")
        .args(args)
        .output()
        .expect("docflow-migrate runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn embedded_migrations() -> usize {
    job_store::MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).count()
}

#[tokio::test]
async fn status_then_run_then_status_again() {
    let db = TestDb::unmigrated().await;

    let status = migrate(&db.url, &["status"]);
    assert_eq!(status.status.code(), Some(3), "an empty database is behind: {}", stdout(&status));
    let pending = stdout(&status).lines().filter(|l| l.starts_with("pending ")).count();
    assert_eq!(pending, embedded_migrations(), "{}", stdout(&status));

    let run = migrate(&db.url, &[]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let applied = stdout(&run).lines().filter(|l| l.starts_with("applied ")).count();
    assert_eq!(applied, embedded_migrations(), "{}", stdout(&run));
    let latest = job_store::schema::latest_version();
    assert!(stdout(&run).contains(&format!("schema current at {latest}")), "{}", stdout(&run));

    let status = migrate(&db.url, &["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stdout(&status));
    let again = migrate(&db.url, &["run"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(!stdout(&again).contains("applied "), "nothing left to apply: {}", stdout(&again));
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobs'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn replicas_migrating_at_once_all_succeed() {
    let db = TestDb::unmigrated().await;
    let runs: Vec<_> = (0..3)
        .map(|_| {
            Command::new(MIGRATE)
                .env_clear()
                .env("DATABASE_URL", &db.url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = runs.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }
    let applied: usize = outputs.iter().map(|o| stdout(o).lines().filter(|l| l.starts_with("applied ")).count()).sum();
    assert_eq!(applied, embedded_migrations(), "each migration applied by exactly one of them");
    assert!(job_store::schema::state(&db.pool).await.unwrap().is_current());
}

#[tokio::test]
async fn a_failed_migration_is_reported_not_retried() {
    let db = TestDb::new().await;
    let latest = fail_latest_migration(&db).await;
    let status = migrate(&db.url, &["status"]);
    assert_eq!(status.status.code(), Some(3));
    assert!(stdout(&status).contains(&format!("schema dirty: migration {latest}")), "{}", stdout(&status));
    let run = migrate(&db.url, &[]);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("failed part-way"), "{}", stderr(&run));
}

#[tokio::test]
async fn an_unreachable_database_fails_after_the_wait() {
    let port = test_support::process::free_port();
    let run = migrate(&format!("postgres://postgres@127.0.0.1:{port}/docflow"), &[]);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("Postgres not reachable within 2 s"), "{}", stderr(&run));
    // A database that does not exist is not waited for.
    let run = migrate("postgres://postgres@127.0.0.1:5432/no_such_database_here", &[]);
    assert_eq!(run.status.code(), Some(1));
    assert!(!stderr(&run).contains("waiting for Postgres"), "{}", stderr(&run));
    assert!(stderr(&run).contains("no_such_database_here"), "{}", stderr(&run));
}

fn ingest_env(db: &TestDb, dir: &std::path::Path, schema_wait: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("DATABASE_URL", db.url.clone()),
        ("AMQP_URL", test_support::amqp_url()),
        ("DOCFLOW_NAMESPACE", format!("migrate-{}", test_support::unique_suffix())),
        ("BLOB_STORE_URL", format!("file://{}", dir.join("blobs").display())),
        ("INGEST_API_KEYS", "k".to_owned()),
        ("SKIP_MIGRATIONS", "true".to_owned()),
        ("SCHEMA_WAIT_SECONDS", schema_wait.to_owned()),
    ])
}

/// Marks the newest migration as one that failed part-way (sqlx's
/// `success = false`), and returns its version.
async fn fail_latest_migration(db: &TestDb) -> i64 {
    let latest = job_store::schema::latest_version();
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(latest)
        .execute(&db.pool)
        .await
        .unwrap();
    latest
}

/// ingest-api under SKIP_MIGRATIONS on `db`, in a directory of its own
/// (kept as long as the returned guard).
fn spawn_ingest(db: &TestDb, schema_wait: &str) -> (tempfile::TempDir, ServiceProcess) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
    let bin = sibling_binary(MIGRATE, "ingest-api");
    let ingest = ServiceProcess::spawn("ingest-api", &bin, &ingest_env(db, dir.path(), schema_wait), dir.path());
    (dir, ingest)
}

#[tokio::test]
async fn a_service_with_skip_migrations_waits_for_the_schema() {
    let db = TestDb::unmigrated().await;
    let (_dir, ingest) = spawn_ingest(&db, "120");
    let http = reqwest::Client::new();
    test_support::eventually(Duration::from_secs(30), "ingest-api to log that it waits", || async {
        ingest.log_text().contains("waiting for the schema").then_some(())
    })
    .await;
    assert!(http.get(ingest.url("/healthz")).send().await.is_err(), "not serving before the schema is there");
    let jobs: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('jobs')::text").fetch_one(&db.pool).await.unwrap();
    assert_eq!(jobs, None, "the waiting service created nothing");

    let run = migrate(&db.url, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    ingest.ready(&http).await;
    assert!(ingest.log_text().contains("schema is current"), "{}", ingest.log_text());
}

#[tokio::test]
async fn a_service_gives_up_when_the_schema_never_comes() {
    let db = TestDb::unmigrated().await;
    let (_dir, mut ingest) = spawn_ingest(&db, "2");
    let status = ingest.exited(Duration::from_secs(60)).await;
    assert!(!status.success());
    let log = ingest.log_text();
    assert!(log.contains("SKIP_MIGRATIONS is set and the schema is not current after 2 s"), "{log}");
    assert!(log.contains("docflow-migrate applies them"), "{log}");
}

#[tokio::test]
async fn a_service_does_not_wait_on_a_failed_migration() {
    let db = TestDb::new().await;
    let latest = fail_latest_migration(&db).await;
    // A wait far longer than the exit below may take: waiting cannot mend it.
    let (_dir, mut ingest) = spawn_ingest(&db, "600");
    let status = ingest.exited(Duration::from_secs(60)).await;
    assert!(!status.success());
    let log = ingest.log_text();
    assert!(log.contains(&job_store::schema::dirty_advice(latest)), "{log}");
}
