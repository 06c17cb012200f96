//! The CLI against an `https://` dlq-admin: a TLS proxy with a certificate
//! from the test's CA in front of the in-process service.

use serde_json::Value;
use test_support::{TestCa, TlsProxy};

use super::{READ_TOKEN, World, docflow, stderr, stdout};

#[tokio::test]
async fn https_urls_work_with_the_ca_file_and_an_untrusted_server_is_refused() {
    let world = World::start().await;
    let jobs = world.dlq_jobs(1, "upload").await;
    let ca = TestCa::new("docflow test CA");
    let upstream = world.admin_url.trim_start_matches("http://").parse().unwrap();
    let proxy = TlsProxy::start(upstream, &ca.server_cert(&["localhost"]), &[b"http/1.1"]).await;
    let url = format!("https://localhost:{}", proxy.port());
    let ca_file = ca.ca_file();
    let ca_file = ca_file.to_str().unwrap();

    let env = [("DOCFLOW_ADMIN_URL", url.as_str()), ("DOCFLOW_ADMIN_TOKEN", READ_TOKEN), ("DOCFLOW_CA_FILE", ca_file)];
    let out = docflow(&["dlq", "list", "--json"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let body: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(body["items"][0]["id"], jobs[0].to_string());

    // Without the CA file the platform's roots do not vouch for the server:
    // the request never got an answer, so "unavailable".
    let out = docflow(&["dlq", "list"], &env[..2]).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("UnknownIssuer"), "{}", stderr(&out));

    // With it, but through a name the certificate does not carry.
    let wrong = format!("https://127.0.0.1:{}", proxy.port());
    let out = docflow(&["dlq", "list", "--admin-url", &wrong, "--ca-file", ca_file], &env[1..2]).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));

    // A missing CA file is named.
    let out = docflow(&["dlq", "list", "--ca-file", "/nonexistent/ca.pem"], &env[..2]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/ca.pem"), "{}", stderr(&out));
}

/// Every connection over TLS at once: the CLI over https to dlq-admin,
/// whose Postgres (TLS-only, `verify-full`, `DATABASE_CA_FILE`) and
/// RabbitMQ (a TLS listener only, `AMQP_CA_FILE`) are the test's own.
#[tokio::test]
async fn a_service_runs_with_every_connection_over_tls() {
    use clap::Parser;
    use test_support::{PrivatePostgres, PrivateRabbitMq};

    let ca = TestCa::new("docflow test CA");
    let cert = ca.server_cert(&["localhost"]);
    let postgres = PrivatePostgres::start(&cert).await;
    let rabbit = PrivateRabbitMq::start(&cert).await;
    let ca_file = ca.ca_file();
    let ca_file = ca_file.to_str().unwrap();
    let config = dlq_admin::Config::parse_from([
        "dlq-admin",
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        &postgres.url("localhost", "sslmode=verify-full"),
        "--database-ca-file",
        ca_file,
        "--amqp-url",
        &rabbit.url("localhost", ""),
        "--amqp-ca-file",
        ca_file,
        "--namespace",
        "tls",
        "--admin-tokens",
        &format!("{READ_TOKEN}:read"),
        "--sweep-interval-seconds",
        "0",
        "--http-workers",
        "1",
    ]);
    let app = dlq_admin::Application::build(config).await.expect("dlq-admin builds (migrations over TLS)");
    let upstream = format!("127.0.0.1:{}", app.port()).parse().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(app.run_until_stopped(shutdown));
    let proxy = TlsProxy::start(upstream, &cert, &[b"http/1.1"]).await;
    let url = format!("https://localhost:{}", proxy.port());

    // Ready means Postgres and the broker both answered, over TLS.
    let pem = std::fs::read(ca.ca_file()).unwrap();
    let http =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build().unwrap();
    let readyz = format!("{url}/readyz");
    let ready = test_support::eventually(std::time::Duration::from_secs(60), "dlq-admin ready over TLS", || async {
        let body: Value = http.get(&readyz).send().await.ok()?.json().await.ok()?;
        (body["status"] == "ready").then_some(body)
    })
    .await;
    assert!(ready["checks"].as_array().unwrap().len() >= 2, "{ready}");

    let env = [("DOCFLOW_ADMIN_URL", url.as_str()), ("DOCFLOW_ADMIN_TOKEN", READ_TOKEN), ("DOCFLOW_CA_FILE", ca_file)];
    let out = docflow(&["dlq", "list", "--json"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let body: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
}
