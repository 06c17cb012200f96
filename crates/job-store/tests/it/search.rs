//! The console's job search: each criterion narrows, tags match by
//! containment, and keyset pages cover every job once, newest first.

use std::collections::BTreeMap;

use job_model::{JobPriority, JobRoute, JobStatus, NewJob, OutboxMessage, ProcessDocument, Topology};
use job_store::jobs::{self, DedupPolicy};
use job_store::search::{JobSearch, job_history, search_jobs};
use sha2::{Digest, Sha256};
use test_support::TestDb;
use uuid::Uuid;

async fn submit(db: &TestDb, document_id: &str, priority: JobPriority, tags: &[(&str, &str)]) -> Uuid {
    let job_id = Uuid::now_v7();
    let job = NewJob {
        job_id,
        document: job_model::DocumentRef {
            document_id: document_id.into(),
            filename: "a.pdf".into(),
            blob_path: "in/a.pdf".into(),
            file_size: 10,
            priority,
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        },
        max_retries: 3,
        idempotency_key: None,
        request_hash: Sha256::digest(job_id.as_bytes()).into(),
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
    jobs::submit_job(
        &mut db.pool.acquire().await.unwrap(),
        &job,
        &message,
        "test",
        DedupPolicy { document_window: None },
        None,
    )
    .await
    .unwrap();
    job_id
}

async fn ids(db: &TestDb, search: &JobSearch) -> Vec<Uuid> {
    search_jobs(&db.pool, search, None, 100).await.unwrap().into_iter().map(|j| j.job_id).collect()
}

#[tokio::test]
async fn each_criterion_narrows_the_search() {
    let db = TestDb::new().await;
    let a = submit(&db, "inv-1", JobPriority::High, &[("customer", "acme"), ("region", "eu")]).await;
    let b = submit(&db, "inv-2", JobPriority::Low, &[("customer", "acme")]).await;
    let c = submit(&db, "inv-1", JobPriority::Normal, &[("customer", "globex")]).await;
    sqlx::query("UPDATE jobs SET status = 'DLQ' WHERE job_id = $1").bind(b).execute(&db.pool).await.unwrap();

    assert_eq!(ids(&db, &JobSearch::default()).await, [c, b, a], "newest first");
    assert_eq!(ids(&db, &JobSearch { job_id: Some(b), ..Default::default() }).await, [b]);
    assert_eq!(ids(&db, &JobSearch { document_id: Some("inv-1".into()), ..Default::default() }).await, [c, a]);
    let acme = JobSearch { tag: Some(("customer".into(), "acme".into())), ..Default::default() };
    assert_eq!(ids(&db, &acme).await, [b, a], "a tag matches whatever other tags the job has");
    assert_eq!(ids(&db, &JobSearch { status: Some(JobStatus::Dlq), ..acme.clone() }).await, [b]);
    assert_eq!(ids(&db, &JobSearch { priority: Some(JobPriority::High), ..acme.clone() }).await, [a]);
    let created: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT created_at FROM jobs WHERE job_id = $1").bind(b).fetch_one(&db.pool).await.unwrap();
    assert_eq!(ids(&db, &JobSearch { since: Some(created), ..Default::default() }).await, [c, b]);
    assert_eq!(ids(&db, &JobSearch { until: Some(created), ..Default::default() }).await, [a]);
    assert!(
        ids(&db, &JobSearch { tag: Some(("customer".into(), "initech".into())), ..Default::default() })
            .await
            .is_empty()
    );

    let history = job_history(&db.pool, a).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].from_status.as_deref(), history[0].to_status.as_str()), (None, "QUEUED"));
}

#[tokio::test]
async fn keyset_pages_cover_every_job_once() {
    let db = TestDb::new().await;
    let mut all = Vec::new();
    for i in 0..7 {
        all.push(submit(&db, &format!("doc-{i}"), JobPriority::Normal, &[]).await);
    }
    all.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = search_jobs(&db.pool, &JobSearch::default(), cursor, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|j| j.job_id);
        seen.extend(page.into_iter().map(|j| j.job_id));
    }
    assert_eq!(seen, all);
}
