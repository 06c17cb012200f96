//! Stage outputs commit with the attempt's outcome, under its lease and
//! attempt check: an attempt that lost its lease writes nothing, and an
//! older attempt never replaces a newer attempt's result.

use std::time::Duration;

use job_model::{AttemptOutcome, AttemptOutputs, JobPriority, JobRoute, NewJob, OutboxMessage, ResultRecord, Topology};
use job_model::{ProcessDocument, TicketDraft};
use job_store::lifecycle::{self, AttemptRecord, ClaimOutcome};
use job_store::{DedupPolicy, jobs};
use sha2::{Digest, Sha256};
use test_support::TestDb;
use uuid::Uuid;

pub const LEASE: Duration = Duration::from_secs(30);

/// Claims `job_id` for `worker` on a connection of `pool`'s.
pub async fn claim(pool: &sqlx::PgPool, job_id: Uuid, worker: &str, message_attempt: Option<i32>) -> ClaimOutcome {
    lifecycle::claim(&mut pool.acquire().await.unwrap(), job_id, worker, LEASE, message_attempt).await.unwrap()
}

pub async fn submit(db: &TestDb) -> Uuid {
    submit_claimed(db, None).await.0
}

/// A job of `document_id` to submit, and its first message.
pub fn new_job(document_id: &str) -> (NewJob, OutboxMessage) {
    let job_id = Uuid::now_v7();
    let job = NewJob {
        job_id,
        document: job_model::DocumentRef {
            document_id: document_id.to_owned(),
            filename: "a.pdf".into(),
            blob_path: "in/a.pdf".into(),
            file_size: 10,
            priority: JobPriority::Normal,
            tags: Default::default(),
        },
        max_retries: 3,
        idempotency_key: None,
        request_hash: Sha256::digest(document_id.as_bytes()).into(),
        trace_id: None,
        traceparent: None,
    };
    let message = OutboxMessage::for_job(
        &Topology::new("t"),
        ProcessDocument::from(&job),
        1,
        JobRoute::Queue,
        Default::default(),
    );
    (job, message)
}

/// Submits a job whose outbox message is claimed for `claim`, if any.
pub async fn submit_claimed(db: &TestDb, claim: Option<Duration>) -> (Uuid, jobs::SubmitOutcome) {
    let (job, message) = new_job(&format!("doc-{}", Uuid::now_v7()));
    let dedup = DedupPolicy { document_window: None };
    let mut connection = db.pool.acquire().await.unwrap();
    (job.job_id, jobs::submit_job(&mut connection, &job, &message, "test", dedup, claim).await.unwrap())
}

/// The job's lease runs out, as when its worker hangs or dies.
pub async fn expire_lease(db: &TestDb, job_id: Uuid) {
    sqlx::query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(job_id)
        .execute(&db.pool)
        .await
        .unwrap();
}

fn outputs(attempt: i32) -> AttemptOutputs {
    AttemptOutputs {
        result: Some(ResultRecord {
            document_id: "doc".into(),
            document_type: "invoice".into(),
            classification_confidence: 0.9,
            mime_type: "application/pdf".into(),
            sha256: "00".into(),
            text_sha256: "11".into(),
            page_count: 1,
            needs_ocr: false,
            supplier: Some("Acme".into()),
            supplier_key: Some("acme".into()),
            invoice_number: Some(format!("INV-{attempt}")),
            invoice_key: Some(format!("INV{attempt}")),
            issue_date: None,
            due_date: None,
            total_cents: Some(100),
            currency: Some("EUR".into()),
            findings: 1,
            result_path: "results/x.json".into(),
            result: serde_json::json!({"attempt": attempt}),
        }),
        tickets: vec![TicketDraft { rule: "high_total".into(), severity: "high".into(), message: "big".into() }],
    }
}

pub fn record(job_id: Uuid, attempt: i32, outcome: AttemptOutcome) -> AttemptRecord {
    AttemptRecord {
        job_id,
        attempt,
        outcome,
        error_message: None,
        error_stage: None,
        stages: Vec::new(),
        messages: Vec::new(),
        outputs: outputs(attempt),
        detail: serde_json::json!({}),
    }
}

async fn counts(db: &TestDb, job_id: Uuid) -> (i64, i64) {
    let results: i64 = sqlx::query_scalar("SELECT count(*) FROM document_results WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    (results, tickets)
}

#[tokio::test]
async fn an_attempt_that_lost_its_lease_writes_no_outputs() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    assert!(matches!(claim(&db.pool, job_id, "w1", None).await, ClaimOutcome::Claimed(_)));
    // The lease expires and another worker claims the job (attempt 2).
    expire_lease(&db, job_id).await;
    assert!(matches!(claim(&db.pool, job_id, "w2", None).await, ClaimOutcome::Claimed(_)));

    let committed = lifecycle::record_attempt(&db.pool, "w1", &record(job_id, 1, AttemptOutcome::Completed)).await;
    assert!(!committed.unwrap(), "the first worker no longer holds the lease");
    assert_eq!(counts(&db, job_id).await, (0, 0), "and wrote neither result nor tickets");

    assert!(lifecycle::record_attempt(&db.pool, "w2", &record(job_id, 2, AttemptOutcome::Completed)).await.unwrap());
    assert_eq!(counts(&db, job_id).await, (1, 1));
}

#[tokio::test]
async fn a_retry_replaces_the_result_and_keeps_one_ticket_per_rule() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    claim(&db.pool, job_id, "w1", None).await;
    assert!(lifecycle::record_attempt(&db.pool, "w1", &record(job_id, 1, AttemptOutcome::Retrying)).await.unwrap());
    claim(&db.pool, job_id, "w1", None).await;
    assert!(lifecycle::record_attempt(&db.pool, "w1", &record(job_id, 2, AttemptOutcome::Completed)).await.unwrap());

    assert_eq!(counts(&db, job_id).await, (1, 1));
    let (attempt, number): (i32, String) =
        sqlx::query_as("SELECT attempt, invoice_number FROM document_results WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((attempt, number.as_str()), (2, "INV-2"));
    let found = job_store::results::find_duplicate(&db.pool, Uuid::now_v7(), "acme", "INV2").await.unwrap();
    assert_eq!(found, Some(job_id), "the stored result answers the duplicate rule for another job");
    assert_eq!(job_store::results::find_duplicate(&db.pool, job_id, "acme", "INV2").await.unwrap(), None);
}
