//! Claims, leases and rescues: no job is left where nobody will pick it up,
//! and no stale message starts an attempt early.

use job_model::{AttemptOutcome, JobStatus};
use job_store::lifecycle::{self, ClaimOutcome};
use test_support::TestDb;

use crate::outputs::{LEASE, record, submit};

#[tokio::test]
async fn a_lease_given_back_at_shutdown_is_rescued_when_no_message_comes_back() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    assert!(matches!(
        lifecycle::claim(&db.pool, job_id, "w1", LEASE, Some(1)).await.unwrap(),
        ClaimOutcome::Claimed(_)
    ));
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
    let ClaimOutcome::Claimed(claimed) = lifecycle::claim(&db.pool, job_id, "w2", LEASE, Some(2)).await.unwrap() else {
        panic!("the rescued job can be claimed");
    };
    assert_eq!((claimed.job.attempt, claimed.job.crash_count), (2, 0));
    assert!(!claimed.recovered_from_crash);
}

#[tokio::test]
async fn a_stale_copy_of_a_message_does_not_end_a_retry_backoff_early() {
    let db = TestDb::new().await;
    let job_id = submit(&db).await;
    lifecycle::claim(&db.pool, job_id, "w1", LEASE, Some(1)).await.unwrap();
    assert!(lifecycle::record_attempt(&db.pool, "w1", &record(job_id, 1, AttemptOutcome::Retrying)).await.unwrap());

    // The first attempt's message again (its ack was lost, or it was
    // published twice) while the retry waits in its tier.
    let stale = lifecycle::claim(&db.pool, job_id, "w2", LEASE, Some(1)).await.unwrap();
    assert_eq!(stale, ClaimOutcome::Stale { job_attempt: 1 });
    let job = job_store::jobs::get_job(&db.pool, job_id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempt), (JobStatus::Retrying, 1), "nothing changed");

    // The retry message itself (sent for attempt 2) claims it.
    let ClaimOutcome::Claimed(claimed) = lifecycle::claim(&db.pool, job_id, "w2", LEASE, Some(2)).await.unwrap() else {
        panic!("the retry's own message claims the job");
    };
    assert_eq!(claimed.job.attempt, 2);
}
