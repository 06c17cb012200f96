//! Claims, leases and rescues: no job is left where nobody will pick it up,
//! and no stale message starts an attempt early.

use job_model::{AttemptOutcome, JobStatus};
use job_store::lifecycle::{self, ClaimOutcome};
use sqlx::PgPool;
use test_support::{PrivatePostgres, TestDb};

use crate::outputs::{claim, record, submit};

#[tokio::test]
async fn a_lease_given_back_at_shutdown_is_rescued_when_no_message_comes_back() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    assert!(matches!(claim(&db.pool, job_id, "w1", Some(1)).await, ClaimOutcome::Claimed(_)));
    assert!(lifecycle::release_lease(&db.pool, job_id, "w1").await.unwrap());

    // The nack that would have brought the message back was lost: only the
    // reaper can find the job now.
    let rescued = lifecycle::rescue_expired(&db.pool, 10, |j| {
        job_model::OutboxMessage::new("x".into(), "normal".into(), j.job_id.as_bytes().to_vec(), Default::default())
    })
    .await
    .unwrap();
    assert_eq!(rescued, vec![job_id], "a released job is rescued, not stranded in PROCESSING");

    // Its next claim is not counted as a crash: the worker gave it back.
    let ClaimOutcome::Claimed(claimed) = claim(&db.pool, job_id, "w2", Some(2)).await else {
        panic!("the rescued job can be claimed");
    };
    assert_eq!((claimed.job.attempt, claimed.job.crash_count), (2, 0));
    assert!(!claimed.recovered_from_crash);
}

#[tokio::test]
async fn a_stale_copy_of_a_message_does_not_end_a_retry_backoff_early() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    claim(&db.pool, job_id, "w1", Some(1)).await;
    assert!(lifecycle::record_attempt(&db.pool, "w1", &record(job_id, 1, AttemptOutcome::Retrying)).await.unwrap());

    // The first attempt's message again (its ack was lost, or it was
    // published twice) while the retry waits in its tier.
    let stale = claim(&db.pool, job_id, "w2", Some(1)).await;
    assert_eq!(stale, ClaimOutcome::Stale { job_attempt: 1 });
    let job = job_store::jobs::get_job(&db.pool, job_id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempt), (JobStatus::Retrying, 1), "nothing changed");

    // The retry message itself (sent for attempt 2) claims it.
    let ClaimOutcome::Claimed(claimed) = claim(&db.pool, job_id, "w2", Some(2)).await else {
        panic!("the retry's own message claims the job");
    };
    assert_eq!(claimed.job.attempt, 2);
}

/// The WAL position written so far, and the one flushed.
async fn wal_positions(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint, \
                (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// What may be lost in a crash commits without waiting for its WAL flush
/// (a claim, the relay's delete of published rows: each is redone), what
/// a client or an ack relies on waits (an outcome).
#[tokio::test]
async fn claims_and_relay_deletes_commit_without_waiting_for_their_flush_and_outcomes_wait() {
    // With the WAL writer stopped, only a synchronous commit moves the
    // flushed position (`PrivatePostgres::stop_wal_writer`).
    let mut server = PrivatePostgres::start_plain(&["autovacuum = off", "bgwriter_lru_maxpages = 0"]).await;
    let db = TestDb::new_on(&server.admin_url()).await;
    let job_id = submit(&db).await;
    let other_job = submit(&db).await;
    server.stop_wal_writer().await;
    let (_, flushed_before) = wal_positions(&db.pool).await;

    let batch = job_store::outbox::lock_batch(&db.pool, 10).await.unwrap();
    let published: Vec<i64> = batch.rows.iter().map(|r| r.id).collect();
    assert_eq!(published.len(), 2, "the two jobs' messages");
    batch.complete(&published, &[]).await.unwrap();
    assert_eq!(job_store::outbox::backlog(&db.pool).await.unwrap(), 0);
    let (delete_written, flushed) = wal_positions(&db.pool).await;
    assert_eq!(flushed, flushed_before, "the relay's delete did not wait for a WAL flush");
    assert!(delete_written > flushed, "the delete is in the WAL, not yet flushed");

    claim(&db.pool, job_id, "w1", Some(1)).await;
    let (claim_written, flushed) = wal_positions(&db.pool).await;
    assert_eq!(flushed, flushed_before, "the claim did not wait for a WAL flush");
    assert!(claim_written > delete_written, "the claim is in the WAL, not yet flushed");

    // Only the claim's own transaction: the connection it ran on (the
    // pool's only one here) still commits synchronously.
    let one = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&db.url).await.unwrap();
    let claimed = claim(&one, other_job, "w1", Some(1)).await;
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&one).await.unwrap();
    assert_eq!(setting, "on", "the claim's setting did not outlive its transaction");

    assert!(lifecycle::record_attempt(&db.pool, "w1", &record(job_id, 1, AttemptOutcome::Completed)).await.unwrap());
    let (_, flushed) = wal_positions(&db.pool).await;
    assert!(flushed >= claim_written, "the outcome waited for its flush, which made the claim before it durable");
    server.resume_wal_writer();
}
