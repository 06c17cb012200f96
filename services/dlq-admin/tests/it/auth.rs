use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{DlqJobs, READ_TOKEN, WRITE_TOKEN, World, assert_error};

#[tokio::test]
async fn every_api_route_needs_a_token_and_changes_need_a_write_token() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    let reason = json!({"reason": "auth test", "filter": {}, "dry_run": true});
    let reads =
        ["/api/dlq".to_owned(), "/api/dlq/groups".to_owned(), format!("/api/dlq/{job}"), "/api/audit".to_owned()];
    let writes = [
        (Method::POST, format!("/api/dlq/{job}/retry")),
        (Method::DELETE, format!("/api/dlq/{job}")),
        (Method::POST, "/api/dlq/retry".to_owned()),
        (Method::POST, "/api/dlq/purge".to_owned()),
    ];
    for path in &reads {
        assert_error(app.get(path, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_error(app.get(path, Some("not-a-token")).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_eq!(app.get(path, Some(READ_TOKEN)).await.status(), StatusCode::OK, "{path}");
        assert_eq!(app.get(path, Some(WRITE_TOKEN)).await.status(), StatusCode::OK, "{path}");
    }
    for (method, path) in &writes {
        let send = |token| app.send(method.clone(), path, token, Some(&reason));
        assert_error(send(None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_error(send(Some("not-a-token")).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_error(send(Some(READ_TOKEN)).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // Nothing changed, nothing audited.
    assert_eq!(world.status_of(job).await, "DLQ");
    assert!(world.audit_rows().await.is_empty());

    // Probes, metrics and the document stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        assert_eq!(app.get(path, None).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn malformed_ids_filters_and_bodies_are_refused_and_change_nothing() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    let app = &app;
    let read = |path: String| async move { app.get(&path, Some(READ_TOKEN)).await };

    for path in ["/api/dlq/not-a-uuid", "/api/dlq/123"] {
        assert_error(read(path.to_owned()).await, StatusCode::BAD_REQUEST, "invalid_job_id").await;
    }
    for query in [
        "priority=urgent",
        "kind=message",
        "since=yesterday",
        "until=2026-13-45",
        "since=2026-11-02&until=2026-11-01",
        "fingerprint=xyz",
        "stage=",
        "limit=0",
        "limit=501",
        "limit=lots",
        "colour=red",
    ] {
        assert_error(read(format!("/api/dlq?{query}")).await, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    assert_error(read("/api/dlq/groups?priority=urgent".into()).await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_error(read("/api/dlq?cursor=garbage".into()).await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    assert_error(read("/api/audit?cursor=-4".into()).await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    assert_error(read("/api/audit?action=nuke".into()).await, StatusCode::BAD_REQUEST, "invalid_query").await;

    let r = json!({"reason": "malformed"});
    assert_error(app.post("/api/dlq/not-a-uuid/retry", &r).await, StatusCode::BAD_REQUEST, "invalid_job_id").await;
    assert_error(app.delete("/api/dlq/not-a-uuid", &r).await, StatusCode::BAD_REQUEST, "invalid_job_id").await;
    let bulk = |body: serde_json::Value| async move { app.post("/api/dlq/retry", &body).await };
    assert_error(bulk(json!({"reason": "x", "job_ids": ["nope"]})).await, StatusCode::BAD_REQUEST, "invalid_job_id")
        .await;
    assert_error(bulk(json!({"reason": "x", "job_ids": []})).await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_error(
        bulk(json!({"reason": "x", "filter": {"priority": "urgent"}})).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(
        bulk(json!({"reason": "x", "filter": {"kind": "poison"}})).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(bulk(json!({"reason": "x", "fingerprint": "zz"})).await, StatusCode::BAD_REQUEST, "invalid_query")
        .await;
    assert_error(
        bulk(json!({"reason": "x", "job_ids": [job], "filter": {}})).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(
        bulk(json!({"reason": "x", "filter": {}, "limit": 0})).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(bulk(json!({"reason": "x"})).await, StatusCode::UNPROCESSABLE_ENTITY, "missing_field").await;
    assert_error(
        bulk(json!({"reason": "x", "filter": {"colour": "red"}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_field",
    )
    .await;
    assert_error(
        app.post("/api/dlq/purge", &json!({"reason": "x", "older_than_days": -1})).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;

    // Broken JSON is a 400; a write without a reason a 422, whatever else it says.
    let raw = app.http.post(app.url("/api/dlq/retry")).bearer_auth(WRITE_TOKEN).body("{not json").send().await.unwrap();
    assert_error(raw, StatusCode::BAD_REQUEST, "invalid_json").await;
    let no_reason = [json!({}), json!({"reason": "   "}), json!({"reason": null}), json!({"filter": {}})];
    for body in &no_reason {
        assert_error(
            app.post(&format!("/api/dlq/{job}/retry"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        )
        .await;
        assert_error(
            app.delete(&format!("/api/dlq/{job}"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        )
        .await;
        assert_error(app.post("/api/dlq/retry", body).await, StatusCode::UNPROCESSABLE_ENTITY, "missing_field").await;
        assert_error(app.post("/api/dlq/purge", body).await, StatusCode::UNPROCESSABLE_ENTITY, "missing_field").await;
    }
    let empty = app.send(Method::DELETE, &format!("/api/dlq/{job}"), Some(WRITE_TOKEN), None).await;
    assert_error(empty, StatusCode::UNPROCESSABLE_ENTITY, "missing_field").await;
    assert_error(
        app.post(&format!("/api/dlq/{job}/retry"), &json!({"reason": 7})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field_type",
    )
    .await;

    assert_eq!(world.status_of(job).await, "DLQ");
    assert!(world.audit_rows().await.is_empty());
    assert_eq!(world.count("SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn the_service_refuses_to_start_without_tokens() {
    let config = dlq_admin::Config::parse_from(["dlq-admin", "--listen-addr", "127.0.0.1:0"]);
    let error = dlq_admin::Application::build(config).await.err().expect("no tokens, no start");
    assert!(error.to_string().contains("ADMIN_TOKENS"), "{error}");
}

#[tokio::test]
async fn with_tokens_configured_insecure_mode_grants_nothing_and_audit_rows_name_the_token() {
    let world = World::new().await;
    // Named tokens beside the helper's (a repeated --admin-tokens appends);
    // --insecure-no-auth must not open the service up.
    let app = world
        .app(&["--admin-tokens", "alice:alice-secret:write,viewer:viewer-secret:read", "--insecure-no-auth"])
        .await;
    let [job] = DlqJobs::default().insert(world.pool()).await[..] else { panic!() };
    let reason = json!({"reason": "named retry"});
    let retry = format!("/api/dlq/{job}/retry");
    for wrong in [None, Some("not-a-token"), Some("alice")] {
        assert_error(
            app.send(Method::POST, &retry, wrong, Some(&reason)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    assert_error(
        app.send(Method::POST, &retry, Some("viewer-secret"), Some(&reason)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(world.status_of(job).await, "DLQ");

    assert_eq!(app.send(Method::POST, &retry, Some("alice-secret"), Some(&reason)).await.status(), StatusCode::OK);
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM admin_audit").fetch_all(world.pool()).await.unwrap();
    assert_eq!(actors, ["alice"], "the configured name, not a function of the token");
}
