use std::time::Duration;

use serde_json::{Value, json};
use test_support::eventually;

use crate::helpers::{DlqJobs, World, events, insert_poison};

#[tokio::test]
async fn a_purge_deletes_exactly_the_items_older_than_the_cutoff() {
    let world = World::new().await;
    let app = world.app(&["--retention-days", "7", "--bulk-batch-size", "2"]).await;
    let pool = world.pool();
    let ten = DlqJobs { count: 3, age: "10 days", document_prefix: "ten", ..Default::default() }.insert(pool).await;
    let eight =
        DlqJobs { count: 1, age: "7 days 1 hour", document_prefix: "eight", ..Default::default() }.insert(pool).await;
    let six =
        DlqJobs { count: 2, age: "6 days 23 hours", document_prefix: "six", ..Default::default() }.insert(pool).await;
    let fresh =
        DlqJobs { count: 1, age: "1 minute", document_prefix: "fresh", ..Default::default() }.insert(pool).await;
    let old_poison = insert_poison(pool, "not_json", b"old", "9 days").await;
    let new_poison = insert_poison(pool, "not_json", b"new", "2 days").await;
    // Not in the DLQ: a purge never touches it, however old.
    let completed =
        DlqJobs { count: 1, age: "30 days", document_prefix: "done", ..Default::default() }.insert(pool).await;
    sqlx::query("UPDATE jobs SET status = 'COMPLETED' WHERE job_id = $1")
        .bind(completed[0])
        .execute(pool)
        .await
        .unwrap();

    let dry: Value =
        app.post("/api/dlq/purge", &json!({"reason": "how many?", "dry_run": true})).await.json().await.unwrap();
    assert_eq!((dry["deleted_jobs"].as_u64(), dry["deleted_poison"].as_u64()), (Some(4), Some(1)), "{dry}");
    assert_eq!(dry["older_than_days"], 7, "defaults to RABBITMQ_DLQ_RETENTION_DAYS");
    assert_eq!(world.count("SELECT count(*) FROM jobs WHERE status = 'DELETED'").await, 0);

    let response = app.post("/api/dlq/purge", &json!({"reason": "retention by hand"})).await;
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    assert_eq!((done["deleted_jobs"].as_u64(), done["deleted_poison"].as_u64()), (Some(4), Some(1)), "{done}");

    for id in ten.iter().chain(&eight) {
        assert_eq!(world.status_of(*id).await, "DELETED");
        let history = events(&world, *id).await;
        assert_eq!(history.last().unwrap().0, "DELETED");
        assert_eq!(history.last().unwrap().2["reason"], "retention by hand");
    }
    for id in six.iter().chain(&fresh) {
        assert_eq!(world.status_of(*id).await, "DLQ");
    }
    assert_eq!(world.status_of(completed[0]).await, "COMPLETED");
    let poison_status = |id| async move {
        sqlx::query_scalar::<_, String>("SELECT status FROM dlq_poison WHERE item_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(poison_status(old_poison).await, "DELETED");
    assert_eq!(poison_status(new_poison).await, "DLQ");

    // One audit row per batch (of two), all of this request.
    let audit = world.audit_rows().await;
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert!(audit.iter().all(|r| r["action"] == "purge" && r["request_id"] == done["request_id"]));
    assert_eq!(audit.iter().map(|r| r["affected"].as_i64().unwrap()).sum::<i64>(), 5);

    // An explicit age: only the fresh job is younger than a day.
    let all: Value =
        app.post("/api/dlq/purge", &json!({"reason": "clean slate", "older_than_days": 1})).await.json().await.unwrap();
    assert_eq!((all["deleted_jobs"].as_u64(), all["deleted_poison"].as_u64()), (Some(2), Some(1)), "{all}");
    assert_eq!(world.status_of(fresh[0]).await, "DLQ");
}

#[tokio::test]
async fn the_sweep_applies_retention_unattended() {
    let world = World::new().await;
    let pool = world.pool();
    let old = DlqJobs { count: 2, age: "8 days", document_prefix: "old", ..Default::default() }.insert(pool).await;
    let young = DlqJobs { count: 2, age: "6 days", document_prefix: "young", ..Default::default() }.insert(pool).await;
    let old_poison = insert_poison(pool, "unknown_job", b"{}", "30 days").await;
    // Two replicas sweeping every 100 ms: they take turns.
    let _a = world.app(&["--retention-days", "7", "--sweep-interval-seconds", "0.1"]).await;
    let _b = world.app(&["--retention-days", "7", "--sweep-interval-seconds", "0.1"]).await;

    eventually(Duration::from_secs(30), "the sweep to delete the old items", || async {
        let deleted = world.count("SELECT count(*) FROM jobs WHERE status = 'DELETED'").await
            + world.count("SELECT count(*) FROM dlq_poison WHERE status = 'DELETED'").await;
        (deleted == 3).then_some(())
    })
    .await;
    // Let a few more sweeps of both replicas run: they find nothing more to do.
    let audit_rows = || async { world.count("SELECT count(*) FROM admin_audit").await };
    let rows = audit_rows().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    for id in &old {
        assert_eq!(world.status_of(*id).await, "DELETED");
        let history = events(&world, *id).await;
        assert_eq!(history.last().unwrap().1, "dlq-admin:retention-sweep");
        assert_eq!(history.iter().filter(|e| e.0 == "DELETED").count(), 1);
    }
    for id in &young {
        assert_eq!(world.status_of(*id).await, "DLQ");
    }
    let status: String = sqlx::query_scalar("SELECT status FROM dlq_poison WHERE item_id = $1")
        .bind(old_poison)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(status, "DELETED");
    let audit = world.audit_rows().await;
    assert!(audit.iter().all(|r| r["actor"] == "retention-sweep" && r["action"] == "purge"));
    assert_eq!(
        audit.iter().map(|r| r["affected"].as_i64().unwrap()).sum::<i64>(),
        3,
        "each item deleted once: {audit:?}"
    );
    assert_eq!(audit_rows().await, rows, "idle sweeps write no audit rows");
}
