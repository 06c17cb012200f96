use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{DlqJobs, World, insert_poison};

#[tokio::test]
async fn the_list_is_newest_first_with_keyset_pages_and_filters() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let pool = world.pool();
    let old_upload =
        DlqJobs { count: 3, age: "3 days", document_prefix: "old", ..Default::default() }.insert(pool).await;
    let high_analysis = DlqJobs {
        count: 2,
        stage: "analysis",
        error_kind: "database_unavailable",
        error: "database_unavailable (retryable): connection refused",
        priority: 1,
        age: "2 hours",
        document_prefix: "hi",
    }
    .insert(pool)
    .await;
    let poison = insert_poison(pool, "not_json", b"\xff\x00{\"a\":\n1}", "1 hour").await;
    let fresh =
        DlqJobs { count: 1, age: "1 minute", document_prefix: "fresh", ..Default::default() }.insert(pool).await;
    // Not in the DLQ: never listed.
    let done = DlqJobs { count: 1, document_prefix: "done", ..Default::default() }.insert(pool).await;
    sqlx::query("UPDATE jobs SET status = 'COMPLETED' WHERE job_id = $1").bind(done[0]).execute(pool).await.unwrap();

    // Newest first, across jobs and poison items.
    let mut expected: Vec<String> = Vec::new();
    expected.extend(fresh.iter().rev().map(|u| u.to_string()));
    expected.push(poison.to_string());
    expected.extend(high_analysis.iter().rev().map(|u| u.to_string()));
    expected.extend(old_upload.iter().rev().map(|u| u.to_string()));
    assert_eq!(app.list_ids("").await, expected);

    // Pages of two, following next_cursor, give the same order once each.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/dlq?limit=2&cursor={c}"),
            None => "/api/dlq?limit=2".to_owned(),
        };
        let page = app.read(&q).await;
        paged.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, expected);

    let ids = |v: &[uuid::Uuid]| v.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>();
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(app.list_ids("stage=analysis").await), ids(&high_analysis));
    assert_eq!(set(app.list_ids("priority=high").await), ids(&high_analysis));
    assert_eq!(set(app.list_ids("error_contains=CONNECTION%20REFUSED").await), ids(&high_analysis));
    assert_eq!(set(app.list_ids("document_id=fresh-1").await), ids(&fresh));
    assert_eq!(set(app.list_ids("kind=poison").await), BTreeSet::from([poison.to_string()]));
    assert_eq!(set(app.list_ids("reason=not_json").await), BTreeSet::from([poison.to_string()]));
    let until = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(set(app.list_ids(&format!("until={until}")).await), ids(&old_upload));
    let since = (chrono::Utc::now() - chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(set(app.list_ids(&format!("since={since}")).await), ids(&fresh));

    // Each item carries what an admin needs; a poison one its reason and escaped payload.
    let list = app.read("/api/dlq").await;
    let items = list["items"].as_array().unwrap();
    let job = items.iter().find(|i| i["id"] == fresh[0].to_string()).unwrap();
    for field in [
        "job_id",
        "document_id",
        "filename",
        "priority",
        "error_message",
        "error_stage",
        "retry_count",
        "dlq_at",
        "fingerprint",
    ] {
        assert!(!job[field].is_null(), "{field}: {job}");
    }
    let p = items.iter().find(|i| i["kind"] == "poison").unwrap();
    assert_eq!(p["poison"]["reason"], "not_json");
    assert_eq!(p["poison"]["payload"], "\\xff\\u{0}{\"a\":\\n1}");
    assert_eq!(p["poison"]["payload_size"], 10);
    assert_eq!(p["poison"]["payload_truncated"], false);
}

#[tokio::test]
async fn items_are_grouped_by_fingerprint_and_a_group_is_retried_by_it() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let pool = world.pool();
    // The same cause with different ids, numbers and paths: one group.
    let timeouts = DlqJobs {
        count: 5,
        error: "blob_store_unavailable (retryable): timed out after {i}s reading s3://bucket/in/{i}/invoice-{i}.pdf for job 019a0000-0000-7000-8000-00000000000{i}",
        ..Default::default()
    }
    .insert(pool)
    .await;
    let refused = DlqJobs {
        count: 3,
        stage: "analysis",
        error_kind: "database_unavailable",
        error: "database_unavailable (retryable): connection to 10.0.0.{i}:5432 refused",
        ..Default::default()
    }
    .insert(pool)
    .await;
    insert_poison(pool, "not_json", b"garbage", "1 minute").await;

    let groups = app.read("/api/dlq/groups").await;
    assert_eq!(groups["total_groups"], 3, "{groups}");
    let g = groups["groups"].as_array().unwrap();
    assert_eq!(g[0]["count"], 5);
    assert_eq!(g[0]["title"], "blob_store_unavailable at upload");
    assert_eq!(g[0]["kind"], "job");
    assert_eq!(
        g[0]["message_template"],
        "blob_store_unavailable (retryable): timed out after <n>s reading <path> for job <id>"
    );
    assert_eq!(g[0]["sample"]["job_id"], timeouts[4].to_string(), "the newest is the sample");
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(at(&g[0]["first_seen"]) < at(&g[0]["last_seen"]));
    assert_eq!(g[1]["count"], 3);
    assert_eq!(g[1]["title"], "database_unavailable at analysis");
    assert_eq!(g[2]["title"], "poison message: not_json");

    // The list carries the same fingerprint, and filters by it.
    let fp = g[0]["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(app.list_ids(&format!("fingerprint={fp}")).await.len(), 5);

    // Dry run, then the group's retry: exactly its five jobs.
    let dry: Value = app
        .post("/api/dlq/retry", &json!({"reason": "store back", "fingerprint": fp, "dry_run": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dry["matched"], 5, "{dry}");
    assert_eq!(dry["retried"], 0);
    assert_eq!(world.count("SELECT count(*) FROM jobs WHERE status = 'QUEUED'").await, 0);
    assert!(world.audit_rows().await.is_empty(), "a dry run changes and records nothing");

    let done: Value =
        app.post("/api/dlq/retry", &json!({"reason": "store back", "fingerprint": fp})).await.json().await.unwrap();
    assert_eq!(done["retried"], 5, "{done}");
    for id in &timeouts {
        assert_eq!(world.status_of(*id).await, "QUEUED");
    }
    for id in &refused {
        assert_eq!(world.status_of(*id).await, "DLQ");
    }
    let audit = world.audit_rows().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "bulk_retry");
    assert_eq!(audit[0]["target"], fp);
    assert_eq!(audit[0]["affected"], 5);

    let groups = app.read("/api/dlq/groups").await;
    assert_eq!(groups["total_groups"], 2);
}
