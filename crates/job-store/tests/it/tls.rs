//! Postgres over TLS, against a Postgres the test starts itself (TLS-only
//! `pg_hba.conf`, a certificate for `localhost` from a CA the test makes).

use std::time::Duration;

use sqlx::PgPool;
use test_support::{PrivatePostgres, TestCa};

async fn pool(url: &str, ca: Option<&std::path::Path>) -> PgPool {
    job_store::connect_with_ca_file(url, ca, 2, Duration::from_secs(20)).await.unwrap()
}

/// Whether this session is encrypted, as the server sees it.
async fn server_says_ssl(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(pool).await
}

async fn failure(url: &str, ca: Option<&std::path::Path>) -> String {
    let error = server_says_ssl(&pool(url, ca).await).await.expect_err("the connection must be refused");
    format!("{error}")
}

#[tokio::test]
async fn sslmode_require_and_verify_full_against_the_test_ca() {
    let ca = TestCa::new("docflow test CA");
    let server = PrivatePostgres::start(&ca.server_cert(&["localhost"])).await;

    // require: encrypted, certificate not checked (no CA given).
    let require = pool(&server.url("127.0.0.1", "sslmode=require"), None).await;
    assert!(server_says_ssl(&require).await.unwrap(), "log: {}", server.log_text());

    // verify-full with the CA file setting: what a service does at start,
    // migrations included.
    let full = pool(&server.url("localhost", "sslmode=verify-full"), Some(&ca.ca_file())).await;
    assert!(server_says_ssl(&full).await.unwrap());
    job_store::MIGRATOR.run(&full).await.expect("migrations run over verify-full TLS");

    // sslrootcert in the URL works alone, and wins over the setting.
    let other = TestCa::new("another CA");
    let url = server.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", ca.ca_file().display()));
    assert!(server_says_ssl(&pool(&url, Some(&other.ca_file())).await).await.unwrap());

    // require with a CA file checks the chain, as libpq does.
    let other_ca = other.ca_file();
    let wrong = failure(&server.url("localhost", "sslmode=require"), Some(&other_ca)).await;
    assert!(wrong.contains("invalid peer certificate: UnknownIssuer"), "{wrong}");
    let right = pool(&server.url("127.0.0.1", "sslmode=require"), Some(&ca.ca_file())).await;
    assert!(server_says_ssl(&right).await.unwrap());

    // verify-ca checks the chain but not the name.
    let verify_ca = pool(&server.url("127.0.0.1", "sslmode=verify-ca"), Some(&ca.ca_file())).await;
    assert!(server_says_ssl(&verify_ca).await.unwrap());

    // The server takes TCP connections over TLS only: TLS is really in use.
    let plain = failure(&server.url("127.0.0.1", "sslmode=disable"), None).await;
    assert!(plain.contains("no encryption") || plain.contains("pg_hba.conf"), "{plain}");
}

#[tokio::test]
async fn verify_full_refuses_a_wrong_host_name_or_an_untrusted_ca() {
    let ca = TestCa::new("docflow test CA");
    let server = PrivatePostgres::start(&ca.server_cert(&["localhost"])).await;

    // The certificate names localhost, not 127.0.0.1.
    let wrong_name = failure(&server.url("127.0.0.1", "sslmode=verify-full"), Some(&ca.ca_file())).await;
    assert!(
        wrong_name.contains("invalid peer certificate") && wrong_name.contains("not valid for name"),
        "{wrong_name}"
    );

    // A CA the client does not trust (the platform's roots only, or
    // another CA's file).
    let untrusted = failure(&server.url("localhost", "sslmode=verify-full"), None).await;
    assert!(untrusted.contains("invalid peer certificate: UnknownIssuer"), "{untrusted}");
    let other = TestCa::new("another CA");
    let untrusted = failure(&server.url("localhost", "sslmode=verify-ca"), Some(&other.ca_file())).await;
    assert!(untrusted.contains("invalid peer certificate: UnknownIssuer"), "{untrusted}");
}
